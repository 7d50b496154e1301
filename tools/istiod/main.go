// pilot-discovery (istiod's control plane) built from the same istio.io/istio version as tools/istio-wasm, so the
// mesh tests run the real istiod against the real kube-apiserver of tools/kube. Flags are pilot-discovery's own.
package main

import (
	"os"

	"istio.io/istio/pilot/cmd/pilot-discovery/app"
	"istio.io/istio/pkg/log"
)

func main() {
	log.EnableKlogWithCobra()
	rootCmd := app.NewRootCommand()
	if err := rootCmd.Execute(); err != nil {
		log.Error(err)
		os.Exit(-1)
	}
}
