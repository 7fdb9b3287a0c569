"""The container files: the health probe against real boards, the Dockerfiles, compose.yaml and
the Kubernetes manifests (validated offline). `make docker-test` runs them in a real Docker."""
