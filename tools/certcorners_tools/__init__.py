"""Tools that run on your machine, never in Lambda: the local S3, the Docker-free invoke and
API server, and the HTTP client. The layer build leaves this package out."""
