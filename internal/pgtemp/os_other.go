//go:build !linux

package pgtemp

import (
	"os"
	"syscall"
)

// sysProcAttr runs postgres as cred (nil: as this process). Only Linux has a
// parent-death signal: elsewhere a server whose test binary died without
// running Main's teardown keeps running until stopped by hand.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred}
}

// baseDirs lists where server directories go, preferred first.
func baseDirs() []string {
	return []string{os.TempDir()}
}
