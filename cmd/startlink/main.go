// Command startlink prints a signed start (or status) link for the oauthcallback function, for operators
// and the local stack. The keyset is read from START_LINK_KEY ("ID:SECRET", or "ID:SECRET,ID:SECRET"
// during a rotation); the link is signed with its first (current) key.
//
//	START_LINK_KEY=k1:... go run ./cmd/startlink -user alice -name 'Alice Martin' \
//	    -resources myactivity.search,youtube.subscriptions -base https://REGION-PROJECT.cloudfunctions.net/OAuthCallback
//
// Every link works once: print a new one for each visit.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/portability-pipeline/pipeline/shared/startlink"
)

func main() {
	user := flag.String("user", "", "the app's user ID")
	name := flag.String("name", "", "display name of the app account that receives the data (start links, optional)")
	res := flag.String("resources", "", "comma-separated resource groups (start links)")
	base := flag.String("base", os.Getenv("PUBLIC_URL"), "the function's public URL (default $PUBLIC_URL)")
	purpose := flag.String("purpose", startlink.PurposeStart, "start or status")
	ttl := flag.Duration("ttl", 0, "validity (default 1h for start links, 10m for status links)")
	flag.Parse()
	link, err := run(os.Getenv("START_LINK_KEY"), *user, *name, *res, *base, *purpose, *ttl, time.Now())
	if err != nil {
		fmt.Fprintln(os.Stderr, "startlink:", err)
		os.Exit(2)
	}
	fmt.Println(link)
}

func run(keyset, user, name, res, base, purpose string, ttl time.Duration, now time.Time) (string, error) {
	ks, err := startlink.ParseKeyset(keyset)
	if err != nil {
		return "", err
	}
	if base == "" {
		return "", fmt.Errorf("give -base (or set PUBLIC_URL)")
	}
	// A status link may live up to the pipeline's STATUS_LINK_TTL (10 minutes unless configured, at most
	// startlink.MaxStatusTTL): the pipeline refuses one beyond its own setting.
	def, maxTTL := startlink.MaxStartTTL, startlink.MaxStartTTL
	if purpose == startlink.PurposeStatus {
		def, maxTTL = startlink.DefaultStatusTTL, startlink.MaxStatusTTL
	}
	if ttl == 0 {
		ttl = def
	}
	l := startlink.Link{User: user, Purpose: purpose, Name: name, Expires: now.Add(ttl)}
	if res != "" {
		l.Resources = strings.Split(res, ",")
	}
	if err := l.Validate(now, maxTTL); err != nil {
		return "", err
	}
	return strings.TrimRight(base, "/") + "/" + purpose + "?" + startlink.Sign(ks.Current(), l).Encode(), nil
}
