// istio-wasm runs istio-agent's own Wasm module handling (istio.io/istio/pkg/wasm) outside a cluster, so the
// tests exercise the code a sidecar runs rather than an imitation of it:
//
//	istio-wasm fetch   -url oci://host/repo:tag [-sha256 hex] -dir cache   pulls and extracts the module like the
//	                   agent's cache does; prints the local module path
//	istio-wasm convert -dir cache < ecds-resource.json > converted.json    the agent's ECDS rewrite: an extension
//	                   config whose Wasm code is remote (as istiod sends it) becomes one with a local file, after
//	                   fetching and checking the module; the ISTIO_META_* VM variables are stripped
//
// Reading and writing is protobuf JSON (TypedExtensionConfig, with "@type" in typed_config).
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"

	"istio.io/istio/pkg/wasm"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: istio-wasm fetch|convert [flags]")
	}
	switch os.Args[1] {
	case "fetch":
		fetch(os.Args[2:])
	case "convert":
		convert(os.Args[2:])
	default:
		fail("unknown command " + os.Args[1] + " (fetch or convert)")
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "istio-wasm: "+msg)
	os.Exit(1)
}

func newCache(dir string) *wasm.LocalFileCache {
	// The agent's defaults, with fewer HTTP retries so that a test against a stopped registry ends quickly.
	return wasm.NewLocalFileCache(dir, wasm.Options{HTTPRequestMaxRetries: 1, HTTPRequestTimeout: 10 * time.Second})
}

func fetch(args []string) {
	fs := flag.NewFlagSet("fetch", flag.ExitOnError)
	url := fs.String("url", "", "module URL: oci://, http:// or https://")
	sum := fs.String("sha256", "", "expected checksum (for oci: the image manifest digest, as the agent compares it)")
	dir := fs.String("dir", "", "cache directory")
	_ = fs.Parse(args)
	if *url == "" || *dir == "" {
		fail("fetch needs -url and -dir")
	}
	cache := newCache(*dir)
	defer cache.Cleanup()
	path, err := cache.Get(*url, wasm.GetOptions{Checksum: *sum, ResourceName: "modelroll.test", RequestTimeout: 10 * time.Second})
	if err != nil {
		fail(err.Error())
	}
	fmt.Println(path)
}

func convert(args []string) {
	fs := flag.NewFlagSet("convert", flag.ExitOnError)
	dir := fs.String("dir", "", "cache directory")
	_ = fs.Parse(args)
	if *dir == "" {
		fail("convert needs -dir")
	}
	input, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail("reading stdin: " + err.Error())
	}
	ec := &core.TypedExtensionConfig{}
	if err := protojson.Unmarshal(input, ec); err != nil {
		fail("stdin is not a TypedExtensionConfig: " + err.Error())
	}
	resource, err := anypb.New(ec)
	if err != nil {
		fail(err.Error())
	}
	cache := newCache(*dir)
	defer cache.Cleanup()
	resources := []*anypb.Any{resource}
	// On a fetch failure the agent does not fail the push: it swaps in an allow-all (FAIL_OPEN) or deny-all RBAC
	// filter under the same name and returns the error; report both.
	convErr := wasm.MaybeConvertWasmExtensionConfig(resources, cache)
	out := &core.TypedExtensionConfig{}
	if err := resources[0].UnmarshalTo(out); err != nil {
		fail("converted resource: " + err.Error())
	}
	text, err := protojson.MarshalOptions{Multiline: true}.Marshal(out)
	if err != nil {
		fail(err.Error())
	}
	fmt.Println(string(text))
	if convErr != nil {
		fmt.Fprintln(os.Stderr, "istio-wasm: conversion error (the agent applied the fallback filter above): "+convErr.Error())
		os.Exit(2)
	}
}
