package store

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgxlisten"

	"github.com/sot-dev/sot"
)

// notifyChannel is the PostgreSQL channel that carries changes.
const notifyChannel = "sot_changes"

// bus fans changes out to the subscribers of this process.
type bus struct {
	logger *slog.Logger
	mu     sync.Mutex
	next   int
	subs   map[int]func(sot.Change)
}

func newBus(logger *slog.Logger) *bus {
	return &bus{logger: logger, subs: make(map[int]func(sot.Change))}
}

// Subscribe calls fn for every change published after the call, until ctx
// is done. Changes made through this DB are delivered before the write
// returns. On PostgreSQL changes of every replica also come through the
// notification listener (this replica's own a second time); after the
// listener (re)connects it delivers a ChangeAll, since changes may have
// been missed.
func (db *DB) Subscribe(ctx context.Context, fn func(sot.Change)) {
	b := db.bus
	b.mu.Lock()
	id := b.next
	b.next++
	b.subs[id] = fn
	b.mu.Unlock()
	context.AfterFunc(ctx, func() {
		b.mu.Lock()
		delete(b.subs, id)
		b.mu.Unlock()
	})
}

func (b *bus) publish(c sot.Change) {
	b.mu.Lock()
	fns := make([]func(sot.Change), 0, len(b.subs))
	for _, fn := range b.subs {
		fns = append(fns, fn)
	}
	b.mu.Unlock()
	for _, fn := range fns {
		fn(c)
	}
}

// wireChange is the JSON form of a change in a notification payload.
type wireChange struct {
	Kind    sot.ChangeKind `json:"kind"`
	Org     string         `json:"org,omitempty"`
	TokenID int64          `json:"token_id,omitempty"`
	UserID  int64          `json:"user_id,omitempty"`
}

func encodeChange(c sot.Change) string {
	b, _ := json.Marshal(wireChange(c)) // cannot fail: plain fields
	return string(b)
}

func decodeChange(s string) (sot.Change, error) {
	var w wireChange
	if err := json.Unmarshal([]byte(s), &w); err != nil {
		return sot.Change{}, err
	}
	return sot.Change(w), nil
}

// listenHandler delivers notifications to the bus, and a ChangeAll on
// every (re)connection through HandleBacklog.
type listenHandler struct {
	b *bus
	// connected is called after every LISTEN.
	connected func()
}

func (h listenHandler) HandleNotification(_ context.Context, n *pgconn.Notification, _ *pgx.Conn) error {
	c, err := decodeChange(n.Payload)
	if err != nil {
		// An unreadable payload still means something changed.
		h.b.publish(sot.Change{Kind: sot.ChangeAll})
		return fmt.Errorf("decode change %q: %w", n.Payload, err)
	}
	h.b.publish(c)
	return nil
}

func (h listenHandler) HandleBacklog(context.Context, string, *pgx.Conn) error {
	h.connected()
	h.b.publish(sot.Change{Kind: sot.ChangeAll})
	return nil
}

// listen starts the notification listener on a connection of its own and
// returns the function that stops it.
func (db *DB) listen(cfg *pgx.ConnConfig) func() {
	l := &pgxlisten.Listener{
		Connect: func(ctx context.Context) (*pgx.Conn, error) {
			return pgx.ConnectConfig(ctx, cfg)
		},
		LogError: func(ctx context.Context, err error) {
			if ctx.Err() != nil {
				return // Close interrupted a (re)connection: not a fault
			}
			db.logger.WarnContext(ctx, "change listener", "err", err)
		},
		ReconnectDelay: time.Second,
	}
	var once sync.Once
	l.Handle(notifyChannel, listenHandler{b: db.bus, connected: func() { once.Do(func() { close(db.listening) }) }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := l.Listen(ctx); err != nil && ctx.Err() == nil {
			db.logger.Error("change listener stopped", "err", err)
		}
	}()
	return func() {
		cancel()
		<-done
	}
}
