package store_test

import (
	"testing"

	"github.com/ossjobwatch/ossjobwatch/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }
