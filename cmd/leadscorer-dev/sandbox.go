package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/leadscorer/leadscorer/config"
	"github.com/leadscorer/leadscorer/internal/sandbox"
	"github.com/leadscorer/leadscorer/topics"
)

func init() {
	register("sandbox", "run Kafka (kfake) and a Schema Registry (srfake) on loopback until interrupted", runSandbox)
}

func runSandbox(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sandbox", flag.ContinueOnError)
	fs.SetOutput(stderr)
	port := fs.Int("kafka-port", 9092, "Kafka port on 127.0.0.1")
	registry := fs.String("registry-addr", "127.0.0.1:8081", "Schema Registry listen address")
	dataDir := fs.String("data-dir", "sandbox-data", "broker data directory (survives restarts); empty keeps data in memory")
	partitions := fs.Int("partitions", 0, "partitions of every topic; 0: as the topics declaration says (leadscorer topics apply)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// The service's topics, as `leadscorer topics apply` creates them.
	declared := topics.Declared(config.Default(), 1)
	if *partitions > 0 {
		for i := range declared {
			declared[i].Partitions = int32(*partitions)
		}
	}
	sb, err := sandbox.Start(sandbox.Options{KafkaPort: *port, RegistryAddr: *registry, DataDir: *dataDir, Topics: declared})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "kafka            %s   (kcat -b %s -L)\n", strings.Join(sb.Brokers(), ","), sb.Brokers()[0])
	fmt.Fprintf(stdout, "schema registry  %s\n", sb.RegistryURL())
	fmt.Fprintf(stdout, "data dir         %q\n", *dataDir)
	fmt.Fprintf(stdout, "point the scorer at it: leadscorer run --brokers %s --schema-registry %s\n", sb.Brokers()[0], sb.RegistryURL())
	fmt.Fprintln(stdout, "Ctrl-C stops it (the broker's data and the registry's schemas are kept in the data dir).")
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return sb.Shutdown(sctx)
}
