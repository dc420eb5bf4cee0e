package console

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/ossjobwatch/ossjobwatch/store/storetest"
)

func TestZZKeep(t *testing.T) {
	if os.Getenv("ZZKEEP") == "" {
		t.Skip()
	}
	st := storetest.NewStore(t)
	for _, sql := range benchData {
		if _, err := st.Pool().Exec(context.Background(), sql); err != nil {
			t.Fatal(err)
		}
	}
	var db string
	st.Pool().QueryRow(context.Background(), "SELECT current_database()").Scan(&db)
	os.WriteFile("/tmp/console-keep-url", []byte(storetest.DatabaseURL(t)+"\n"+db+"\n"), 0o644)
	time.Sleep(40 * time.Minute)
}
