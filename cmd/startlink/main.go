// Command startlink prints a signed start (or status) link for the oauthcallback function, for operators
// and the local stack. The key is read from START_LINK_KEY.
//
//	START_LINK_KEY=... go run ./cmd/startlink -user alice \
//	    -resources myactivity.search,youtube.subscriptions -base https://REGION-PROJECT.cloudfunctions.net/OAuthCallback
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
	res := flag.String("resources", "", "comma-separated resource groups (start links)")
	base := flag.String("base", os.Getenv("PUBLIC_URL"), "the function's public URL (default $PUBLIC_URL)")
	purpose := flag.String("purpose", startlink.PurposeStart, "start or status")
	ttl := flag.Duration("ttl", 0, "validity (default 1h for start links, 7 days for status links)")
	flag.Parse()
	if err := run(*user, *res, *base, *purpose, *ttl); err != nil {
		fmt.Fprintln(os.Stderr, "startlink:", err)
		os.Exit(2)
	}
}

func run(user, res, base, purpose string, ttl time.Duration) error {
	key := os.Getenv("START_LINK_KEY")
	if len(key) < 32 {
		return fmt.Errorf("set START_LINK_KEY (at least 32 characters)")
	}
	if base == "" {
		return fmt.Errorf("give -base (or set PUBLIC_URL)")
	}
	if ttl == 0 {
		ttl = time.Hour
		if purpose == startlink.PurposeStatus {
			ttl = 7 * 24 * time.Hour
		}
	}
	l := startlink.Link{User: user, Purpose: purpose, Expires: time.Now().Add(ttl)}
	if res != "" {
		l.Resources = strings.Split(res, ",")
	}
	if err := l.Validate(time.Now()); err != nil {
		return err
	}
	fmt.Println(strings.TrimRight(base, "/") + "/" + purpose + "?" + startlink.Sign([]byte(key), l).Encode())
	return nil
}
