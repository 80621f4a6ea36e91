// CoreDNS for the test cluster's real nodes, with only the plugins its Corefile uses
// (test/cluster/lib/nodes.ts): bind, ready, health, errors, cache, kubernetes. CoreDNS's own main
// (github.com/coredns/coredns/coredns.go) links every plugin, among them the AWS, Azure and Google
// Cloud SDKs, and takes up to 16 minutes to build here; this is the build with a trimmed plugin
// list that CoreDNS documents ("compile-time enabling or disabling plugins": a main that imports
// the plugins it wants and sets dnsserver.Directives, in the order of CoreDNS's plugin.cfg).
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/ready"
)

// The plugins' order in a server block: plugin.cfg's order (core/dnsserver/zdirectives.go).
var directives = []string{"bind", "ready", "health", "errors", "cache", "kubernetes"}

func init() { dnsserver.Directives = directives }

func main() { coremain.Run() }
