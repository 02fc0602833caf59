// Command functions serves the pipeline's functions with the functions framework, as Cloud Functions
// does: the deployable root package registers every entry point, FUNCTION_TARGET picks one (served at /
// and every path below), PORT picks the port. The local stack runs one process per entry point.
package main

import (
	"log"
	"os"
	"strings"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"

	"github.com/portability-pipeline/pipeline"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	if os.Getenv("FUNCTION_TARGET") == "" {
		var entries []string
		for _, r := range pipeline.Routes {
			entries = append(entries, r.Entry)
		}
		log.Fatalf("set FUNCTION_TARGET to the entry point to serve (%s)", strings.Join(entries, ", "))
	}
	if err := funcframework.Start(port); err != nil {
		log.Fatalf("functions framework: %v", err)
	}
}
