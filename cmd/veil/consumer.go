package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/veilhq/veil/audit"
)

func runConsumerAdd(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	fs, configPath := c.flags()
	purposes := fs.String("purpose", "", "purposes granted, comma-separated (required)")
	pos, err := c.parse(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *purposes == "" {
		return c.usage(fs, stderr, "name the consumer and its purposes")
	}
	_, st, err := loadStore(*configPath)
	if err != nil {
		return err
	}
	defer st.Close()
	key, err := st.AddConsumer(ctx, pos[0], strings.Split(*purposes, ","), cliActor)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "consumer %s added for %s\nkey (shown once, Veil keeps only its hash):\n%s\n", pos[0], *purposes, key)
	return nil
}

func runConsumerList(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	return c.onStore(args, stdout, stderr, 0, "list takes no arguments", func(st *audit.Store, pos []string) error {
		cs, err := st.Consumers(ctx)
		if err != nil {
			return err
		}
		if len(cs) == 0 {
			fmt.Fprintln(stdout, "no consumers; add one with `veil consumer add NAME --purpose P`")
		}
		for _, c := range cs {
			state := "active"
			if c.Revoked {
				state = "revoked"
			}
			fmt.Fprintf(stdout, "%-20s %-8s purposes=%s since %s\n", c.Name, state, strings.Join(c.Purposes, ","), c.CreatedAt.Format("2006-01-02"))
		}
		return nil
	})
}

func runConsumerRevoke(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	return c.onStore(args, stdout, stderr, 1, "name the consumer to revoke", func(st *audit.Store, pos []string) error {
		if err := st.RevokeConsumer(ctx, pos[0], cliActor); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "consumer %s revoked\n", pos[0])
		return nil
	})
}
