// Command etcd is the etcd server, built at the version pinned in go.mod, for
// the local Kubernetes control plane that the tests run against.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
