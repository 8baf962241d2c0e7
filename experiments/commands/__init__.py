"""One module per `embodia` sub-command; each exposes `register(subparsers)`."""
