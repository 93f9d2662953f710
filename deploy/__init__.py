"""How the orchestra itself runs: NATS configuration, image, compose, Kubernetes and Helm."""
