"""Cloud twins: an AWS API on moto and a Kubernetes API per region, over the lab."""
