package main

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// runConsumer adds, lists and revokes lookup consumers.
func runConsumer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const usage = "usage: veil consumer add NAME --purpose P[,P…] | veil consumer list | veil consumer revoke NAME\n"
	fs, configPath := newFlagSet("consumer", stderr)
	purposes := fs.String("purpose", "", "purposes granted, comma-separated (add)")
	pos, err := parseFlags(fs, args)
	if err != nil || len(pos) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	switch {
	case pos[0] == "add" && len(pos) == 2 && *purposes != "":
	case pos[0] == "list" && len(pos) == 1:
	case pos[0] == "revoke" && len(pos) == 2:
	default:
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	_, st, err := loadStore(*configPath)
	if err != nil {
		return err
	}
	defer st.Close()
	switch pos[0] {
	case "add":
		key, err := st.AddConsumer(ctx, pos[1], strings.Split(*purposes, ","))
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "consumer %s added for %s\nkey (shown once, Veil keeps only its hash):\n%s\n", pos[1], *purposes, key)
	case "list":
		cs, err := st.Consumers(ctx)
		if err != nil {
			return err
		}
		for _, c := range cs {
			state := "active"
			if c.Revoked {
				state = "revoked"
			}
			fmt.Fprintf(stdout, "%-20s %-8s purposes=%s since %s\n", c.Name, state, strings.Join(c.Purposes, ","), c.CreatedAt.Format("2006-01-02"))
		}
	case "revoke":
		if err := st.RevokeConsumer(ctx, pos[1]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "consumer %s revoked\n", pos[1])
	}
	return nil
}
