package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
)

// Issued tokens look like aex_<16 hex id>_<43 base64url secret>. The id finds the record without
// a scan; the whole token's SHA-256 is what is stored and compared. SHA-256 suffices because the
// tokens carry 256 random bits: there is nothing for a slow hash to protect.
const (
	tokenPrefix   = "aex_"
	tokenIDLen    = 16
	tokenSecretN  = 32
	issuedLen     = len(tokenPrefix) + tokenIDLen + 1 + 43
	bootstrapID   = "bootstrap"
	bootstrapName = "admin"
	// maxTokenLen bounds the work an unauthenticated caller can cause.
	maxTokenLen = 1024
)

// CreateToken issues a token with the given permissions and returns it; only its hash is kept, so
// this is the one time it can be shown.
func (s *Store) CreateToken(ctx context.Context, name string, perms []Permission, by Principal) (string, Token, error) {
	var errs fieldErrors
	errs.merge(validateTokenName(name))
	if len(perms) == 0 {
		errs.add("permissions", "must name at least one permission")
	}
	for _, p := range perms {
		if !p.valid() {
			errs.add("permissions", fmt.Sprintf("unknown permission %q", p))
		}
	}
	if err := errs.err(); err != nil {
		return "", Token{}, err
	}
	var idBytes [tokenIDLen / 2]byte
	var secret [tokenSecretN]byte
	rand.Read(idBytes[:])
	rand.Read(secret[:])
	id := hex.EncodeToString(idBytes[:])
	plain := tokenPrefix + id + "_" + base64.RawURLEncoding.EncodeToString(secret[:])
	sum := sha256.Sum256([]byte(plain))
	perms = slices.Clone(perms)
	slices.Sort(perms)
	t := Token{
		ID: id, Name: name, Permissions: slices.Compact(perms), SHA256: sum[:],
		CreatedBy: by.Name, CreatedAt: s.now().UTC(),
	}
	err := s.update(ctx, func(tx Tx) error {
		other, taken, err := tokenNamed(tx, name)
		if err != nil {
			return err
		}
		if taken {
			return fmt.Errorf("a token named %q already exists: %w", other.Name, ErrConflict)
		}
		if err := tx.PutToken(t); err != nil {
			return err
		}
		return s.auditTo(tx)(tokenAudit(by, t.CreatedAt, auditCreate, t))
	})
	if err != nil {
		return "", Token{}, err
	}
	return plain, t, nil
}

// Tokens lists the API tokens (their hashes cleared), in order of name.
func (s *Store) Tokens(ctx context.Context) ([]Token, error) {
	var tokens []Token
	err := s.view(ctx, func(tx ReadTx) error {
		tokens = tokens[:0]
		return tx.Tokens(func(t Token) bool {
			t.SHA256 = nil
			tokens = append(tokens, t)
			return true
		})
	})
	slices.SortFunc(tokens, func(a, b Token) int { return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)) })
	return tokens, err
}

// RevokeToken deletes the token named name (case-insensitive), so it authenticates no more
// requests, and returns it. A token cannot revoke itself: that would lock its holder out by
// mistake. A revoked bootstrap token comes back at the next start (see server's
// ensureAdminToken): from AUDITEXPORT_ADMIN_TOKEN, or newly generated.
func (s *Store) RevokeToken(ctx context.Context, name string, by Principal) (Token, error) {
	var revoked Token
	err := s.update(ctx, func(tx Tx) error {
		var found bool
		var err error
		if revoked, found, err = tokenNamed(tx, name); err != nil {
			return err
		}
		if !found {
			return &NotFoundError{What: "API token", ID: name}
		}
		if revoked.ID == by.TokenID {
			var errs fieldErrors
			errs.add("name", "is the token of this request: a token cannot revoke itself")
			return errs.err()
		}
		if err := tx.DeleteToken(revoked.ID); err != nil {
			return err
		}
		now := s.txNow(tx).UTC()
		return s.auditTo(tx)(tokenAudit(by, now, auditDelete, revoked))
	})
	revoked.SHA256 = nil
	return revoked, err
}

// tokenNamed finds the token named name; names are unique regardless of case.
func tokenNamed(tx ReadTx, name string) (Token, bool, error) {
	id, found, err := tx.TokenIDByName(name)
	if err != nil || !found {
		return Token{}, false, err
	}
	return tx.Token(id)
}

// SetBootstrapToken makes token the bootstrap admin token (name "admin", permission ADMIN),
// replacing an earlier one.
func (s *Store) SetBootstrapToken(ctx context.Context, token string) error {
	sum := sha256.Sum256([]byte(token))
	t := Token{
		ID: bootstrapID, Name: bootstrapName, Permissions: []Permission{PermissionAdmin},
		SHA256: sum[:], CreatedBy: "auditexport", CreatedAt: s.now().UTC(),
	}
	return s.update(ctx, func(tx Tx) error {
		old, found, err := tx.Token(bootstrapID)
		if err != nil {
			return err
		}
		if found && subtle.ConstantTimeCompare(old.SHA256, t.SHA256) == 1 {
			return nil // unchanged: keep its creation time
		}
		return tx.PutToken(t)
	})
}

// HasBootstrapToken reports whether a bootstrap admin token was set on an earlier start.
func (s *Store) HasBootstrapToken(ctx context.Context) (bool, error) {
	found := false
	err := s.view(ctx, func(tx ReadTx) error {
		var err error
		_, found, err = tx.Token(bootstrapID)
		return err
	})
	return found, err
}

// Authenticate returns the principal a token stands for, or ErrUnauthenticated. The hashes are
// compared in constant time.
func (s *Store) Authenticate(ctx context.Context, token string) (Principal, error) {
	if token == "" || len(token) > maxTokenLen {
		return Principal{}, ErrUnauthenticated
	}
	id := bootstrapID
	if len(token) == issuedLen && strings.HasPrefix(token, tokenPrefix) && token[len(tokenPrefix)+tokenIDLen] == '_' {
		id = token[len(tokenPrefix) : len(tokenPrefix)+tokenIDLen]
	}
	sum := sha256.Sum256([]byte(token))
	var t Token
	err := s.view(ctx, func(tx ReadTx) error {
		var found bool
		var err error
		if t, found, err = tx.Token(id); err == nil && !found {
			return ErrUnauthenticated
		}
		return err
	})
	if err != nil {
		return Principal{}, err
	}
	if subtle.ConstantTimeCompare(sum[:], t.SHA256) != 1 {
		return Principal{}, ErrUnauthenticated
	}
	return t.principal(), nil
}
