"""The Linkis wire plumbing, free of models: the envelope, error handling, authentication,
permissions, the cross-site check and OpenAPI helpers shared by every endpoint."""
