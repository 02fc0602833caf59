// Command portctl is the operator's tool: it reads the same environment as the functions (PROJECT_ID,
// BUCKET, TOKEN_KEY_URI, OAUTH_CLIENT_ID/SECRET...; against the local stack, the export lines devstack
// -keep-running prints) and acts through the same clients.
//
//	portctl [-json] users                      users and their current rounds, with state and age
//	portctl [-json] show USER                  rounds, resources, jobs, retries, reasons, files and parts
//	portctl retry USER RESOURCE                initiate a failed resource of the current round again
//	portctl cancel USER RESOURCE               cancel the resource's running job at Google, record it cancelled
//	portctl reset USER                         authorization:reset, destroy the token, close the grant
//	portctl purge USER                         delete everything stored of the user (shared/purge)
//	portctl [-json] stuck                      what the reconciler would repair now (nothing is changed)
//	portctl replay-dead-letters [TOPIC...]     republish <topic>-dead-letter messages (all topics by default)
//	portctl replay-initiate USER ROUND         publish a round's initiate request again (callback logs
//	                                           "action": "replay-initiate" when its publish failed)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/portability-pipeline/pipeline/internal/operator"
	"github.com/portability-pipeline/pipeline/shared/purge"
)

func main() {
	jsonOut := flag.Bool("json", false, "print JSON instead of tables")
	timeout := flag.Duration("timeout", 5*time.Minute, "give up after this long")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: portctl [-json] users | show USER | retry USER RESOURCE | cancel USER RESOURCE | reset USER | purge USER | stuck | replay-dead-letters [TOPIC...] | replay-initiate USER ROUND")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, *timeout)
	defer cancelT()
	op, err := operator.New(ctx)
	if err != nil {
		fail(err)
	}
	if err := operator.Run(ctx, op, os.Stdout, *jsonOut, flag.Args()); err != nil {
		if errors.Is(err, operator.ErrUsage) {
			flag.Usage()
			os.Exit(2)
		}
		if errors.Is(err, purge.ErrNothingToPurge) {
			fmt.Fprintln(os.Stderr, "portctl: nothing to purge:", err)
			os.Exit(3)
		}
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "portctl:", err)
	os.Exit(1)
}
