package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/chatspec/chatspec/reference"
)

// startEmbedded starts the reference server in-process on a free loopback
// port: what verify and load measure when no --target is given. tune
// adjusts the default configuration for the subcommand. It returns the
// server and its init path.
func startEmbedded(ctx context.Context, tune func(*reference.Config)) (*reference.Running, string, error) {
	cfg := reference.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	tune(&cfg)
	srv, err := reference.Start(ctx, cfg)
	if err != nil {
		return nil, "", err
	}
	return srv, cfg.InitPath, nil
}

// reportFile is one file of a report directory and the renderer that
// writes it.
type reportFile[T any] struct {
	name  string
	write func(io.Writer, T) error
}

// writeReports writes every file of a report directory; the first error
// (of a renderer or of closing its file) names the file.
func writeReports[T any](dir string, v T, files []reportFile[T]) error {
	for _, out := range files {
		path := filepath.Join(dir, out.name)
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		werr := out.write(f, v)
		cerr := f.Close()
		if err := errors.Join(werr, cerr); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
	}
	return nil
}
