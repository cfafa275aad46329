package main

import "context"

// serveCmd runs the server.
type serveCmd struct{}

// Run runs the server until ctx is done.
func (s *serveCmd) Run(ctx context.Context) error { return nil }
