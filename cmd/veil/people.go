package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/audit"
	"github.com/veilhq/veil/auth"
)

// cliActor is who the commands that open the store directly act as: the
// holder of the config and its keys, which is break-glass access.
const cliActor = veil.ActorBreakGlass + "cli"

func runUserAdd(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	fs, configPath := c.flags()
	roles := fs.String("role", "", "the user's roles, comma-separated: "+strings.Join(veil.AllRoles, ", ")+" (required)")
	pos, err := c.parse(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *roles == "" {
		return c.usage(fs, stderr, "name the user and her roles")
	}
	rs, err := veil.ParseRoles(*roles)
	if err != nil {
		return err
	}
	_, st, err := loadStore(*configPath)
	if err != nil {
		return err
	}
	defer st.Close()
	password := auth.NewPassword()
	if err := st.AddUser(ctx, pos[0], rs, auth.HashPassword(password), cliActor); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "user %s added with %s\none-time password (shown once; the first login must choose another):\n%s\n",
		pos[0], strings.Join(rs, ", "), password)
	return nil
}

func runUserReset(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	return c.onStore(args, stdout, stderr, 1, "name the user", func(st *audit.Store, pos []string) error {
		password := auth.NewPassword()
		if err := st.SetPassword(ctx, pos[0], auth.HashPassword(password), true, cliActor); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s unlocked; one-time password (shown once):\n%s\n", pos[0], password)
		return nil
	})
}

func runUserRemove(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	return c.onStore(args, stdout, stderr, 1, "name the user", func(st *audit.Store, pos []string) error {
		if err := st.RemoveUser(ctx, pos[0], cliActor); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s removed; her sessions are ended\n", pos[0])
		return nil
	})
}

func runUserList(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	return c.onStore(args, stdout, stderr, 0, "list takes no arguments", func(st *audit.Store, pos []string) error {
		us, err := st.Users(ctx)
		if err != nil {
			return err
		}
		if len(us) == 0 {
			fmt.Fprintln(stdout, "no local users; add one with `veil user add NAME --role reviewer`")
		}
		now := st.Now()
		for _, u := range us {
			state := "active"
			switch {
			case u.LockedUntil.After(now):
				state = "locked until " + u.LockedUntil.Format(time.RFC3339)
			case u.MustChange:
				state = "one-time password not yet changed"
			}
			fmt.Fprintf(stdout, "%-32s %-28s %s\n", u.Name, strings.Join(u.Roles, ","), state)
		}
		return nil
	})
}

// parseExpiry reads --expires: a Go duration or a number of days (90d).
func parseExpiry(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 || n > 3650 {
			return 0, fmt.Errorf("--expires: a number of days from 1 to 3650 (90d) or a duration (12h)")
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("--expires: a number of days (90d) or a duration (12h)")
	}
	return d, nil
}

func runTokenCreate(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	fs, configPath := c.flags()
	name := fs.String("name", "", "the token's name, as the audit log shows it (token:NAME; required)")
	roles := fs.String("role", "", "its roles, comma-separated: "+strings.Join(veil.AllRoles, ", ")+" (required)")
	expires := fs.String("expires", "", "how long it works: 90d, 12h (default: until revoked)")
	pos, err := c.parse(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	if len(pos) != 0 || *name == "" || *roles == "" {
		return c.usage(fs, stderr, "give the token a --name and a --role")
	}
	rs, err := veil.ParseRoles(*roles)
	if err != nil {
		return err
	}
	ttl, err := parseExpiry(*expires)
	if err != nil {
		return err
	}
	_, st, err := loadStore(*configPath)
	if err != nil {
		return err
	}
	defer st.Close()
	var until time.Time
	if ttl > 0 {
		until = st.Now().Add(ttl)
	}
	secret, err := st.CreateToken(ctx, *name, rs, until, cliActor)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "token %s created with %s", *name, strings.Join(rs, ", "))
	if !until.IsZero() {
		fmt.Fprintf(stdout, ", until %s", until.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(stdout, "\nsecret (shown once, Veil keeps only a keyed hash; send it as Authorization: Bearer …, or VEIL_TOKEN for the CLI):\n%s\n", secret)
	return nil
}

func runTokenList(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	return c.onStore(args, stdout, stderr, 0, "list takes no arguments", func(st *audit.Store, pos []string) error {
		ts, err := st.Tokens(ctx)
		if err != nil {
			return err
		}
		if len(ts) == 0 {
			fmt.Fprintln(stdout, "no API tokens; create one with `veil token create --name NAME --role auditor --expires 90d`")
		}
		now := st.Now()
		for _, t := range ts {
			line := fmt.Sprintf("%-24s %-8s %-28s created %s by %s", t.Name, t.State(now), strings.Join(t.Roles, ","),
				t.CreatedAt.Format("2006-01-02"), t.CreatedBy)
			if !t.ExpiresAt.IsZero() {
				line += ", expires " + t.ExpiresAt.Format("2006-01-02")
			}
			if !t.LastUsed.IsZero() {
				line += ", last used " + t.LastUsed.Format(time.RFC3339)
			}
			fmt.Fprintln(stdout, line)
		}
		return nil
	})
}

func runTokenRevoke(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	return c.onStore(args, stdout, stderr, 1, "name the token", func(st *audit.Store, pos []string) error {
		if err := st.RevokeToken(ctx, pos[0], cliActor); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "token %s revoked: refused from now on, on every replica\n", pos[0])
		return nil
	})
}
