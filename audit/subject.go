package audit

// The data subject as an entity: every reference an event names (the
// candidate, her applications and offers, optionally her email) is linked,
// as a keyed hash, to one person, and the person's payloads are sealed
// under the person's data keys. Erasure resolves any reference to the
// person, shreds the keys of every reference linked to her, and leaves a
// tombstone: her later events are answered, stored without payload, and
// delivered nowhere.

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/veilhq/veil"
)

// ErrUnknownSubject is returned for a reference Veil holds nothing about.
var ErrUnknownSubject = veil.Errorf(veil.EUNKNOWNSUBJECT,
	"Veil holds nothing about this subject: no event named it (check the source, the record kind and the id).")

// ErrNotErased is returned by Restore for a person who is not erased.
var ErrNotErased = veil.Errorf(veil.ECONFLICT, "This subject is not erased; there is nothing to restore.")

// subjectRef is one reference of an event, as the store keeps it.
type subjectRef struct {
	hash, kind string
}

// subjectRefs hashes an event's references, the candidate's first.
func (s *Store) subjectRefs(refs []string) []subjectRef {
	out := make([]subjectRef, 0, len(refs))
	for _, r := range refs {
		out = append(out, subjectRef{hash: s.SubjectHash(r), kind: veil.RefKind(r)})
	}
	return out
}

// loadErased reads which references are erased: those whose last row in
// the erasures log is not a restore.
func (s *Store) loadErased(db dbh) error {
	s.erasedMu.Lock()
	s.erased, s.erasedSeq = map[string]bool{}, 0
	s.erasedMu.Unlock()
	return s.refreshErased(func(q string, args ...any) (*sql.Rows, error) {
		return db.QueryContext(context.Background(), q, args...)
	})
}

// refreshErased applies the erasures log's rows after the last it applied
// to the set of erased references, in order; query reads (the readers, or
// the writer's transaction).
func (s *Store) refreshErased(query func(q string, args ...any) (*sql.Rows, error)) error {
	s.erasedMu.Lock()
	defer s.erasedMu.Unlock()
	rows, err := query(`SELECT seq, subject, lifted FROM erasures WHERE seq > ? ORDER BY seq`, s.erasedSeq)
	if err != nil {
		return fmt.Errorf("read erasures: %w", err)
	}
	restored := s.salts == nil
	for rows.Next() {
		var seq int64
		var sub string
		var lifted int
		if err := rows.Scan(&seq, &sub, &lifted); err != nil {
			rows.Close()
			return err
		}
		s.setErased(sub, lifted == 0)
		s.erasedSeq = seq
		restored = restored || lifted != 0
	}
	rows.Close()
	if err := rows.Err(); err != nil || !restored {
		return err
	}
	// A restore: the salts of the people whose erasure was lifted (few).
	rows, err = query(`SELECT person, salt FROM tombstones WHERE restored_at IS NOT NULL`)
	if err != nil {
		return fmt.Errorf("read tombstones: %w", err)
	}
	defer rows.Close()
	s.salts = map[string][]byte{}
	for rows.Next() {
		var person string
		var salt []byte
		if err := rows.Scan(&person, &salt); err != nil {
			return err
		}
		s.salts[person] = salt
	}
	return rows.Err()
}

// freshEvery is how often a decision before the commit reads the erasures
// log for what other processes appended.
const freshEvery = 250 * time.Millisecond

// freshErased brings the set of erased references up to the log, when
// another process (or this one's writer) appended to it: so a decision
// made before the commit sees an erasure or a restore at once.
func (s *Store) freshErased(ctx context.Context) error {
	// At most every freshEvery: the writer checks again, in the
	// transaction that commits, so a later look only errs closed (an event
	// filtered for a restore a moment old).
	now := time.Now().UnixNano()
	if last := s.erasedChecked.Load(); now-last < int64(freshEvery) || !s.erasedChecked.CompareAndSwap(last, now) {
		return nil
	}
	var last int64
	if err := s.rdb.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM erasures`).Scan(&last); err != nil {
		return fmt.Errorf("read erasures: %w", err)
	}
	s.erasedMu.RLock()
	seen := s.erasedSeq
	s.erasedMu.RUnlock()
	if last <= seen {
		return nil
	}
	return s.readErased(ctx)
}

// setErased records a reference as erased or lifted. erasedMu held.
func (s *Store) setErased(ref string, erased bool) {
	if erased {
		s.erased[ref] = true
	} else {
		delete(s.erased, ref)
	}
}

// isErased reports whether a reference (keyed hash) is erased.
func (s *Store) isErased(ref string) bool {
	s.erasedMu.RLock()
	defer s.erasedMu.RUnlock()
	return s.erased[ref]
}

// Resolve says what the store knows of the person an event's references
// name, read outside the writer: the person, whether she is erased, and the
// salt of her pseudonyms after an erasure was lifted. The writer decides
// again when it commits (a link may be learned meanwhile); this is what
// the decisions before the commit go by.
func (s *Store) Resolve(ctx context.Context, refs []string) (veil.SubjectState, error) {
	var st veil.SubjectState
	if len(refs) == 0 {
		return st, nil
	}
	if err := s.freshErased(ctx); err != nil {
		return st, err
	}
	rs := s.subjectRefs(refs)
	args := make([]any, len(rs))
	for i, r := range rs {
		args[i] = r.hash
		st.Erased = st.Erased || s.isErased(r.hash)
	}
	s.erasedMu.RLock()
	anySalt := len(s.salts) > 0
	s.erasedMu.RUnlock()
	if !anySalt {
		// Every reference of an erased person is in the erased set, and no
		// person has a salt: what the links would add changes nothing the
		// decisions need. The writer links for good.
		st.Person, _, _ = s.pickPerson(rs, nil)
		return st, nil
	}
	known, err := s.readLinks(func(q string, args ...any) (*sql.Rows, error) { return s.rdb.QueryContext(ctx, q, args...) },
		func(q string, args ...any) *sql.Row { return s.rdb.QueryRowContext(ctx, q, args...) }, args)
	if err != nil {
		return st, fmt.Errorf("resolve subject: %w", err)
	}
	var merged []string
	st.Person, merged, _ = s.pickPerson(rs, known)
	s.erasedMu.RLock()
	st.Salt = s.salts[st.Person]
	s.erasedMu.RUnlock()
	st.Erased = s.isErased(st.Person)
	for _, m := range merged {
		st.Erased = st.Erased || s.isErased(m)
	}
	return st, nil
}

// link is what subject_links says of a reference: its person, and whether
// that person is anchored by a candidate's record (not only applications
// or offers whose candidate Veil has not seen yet).
type link struct {
	person   string
	anchored bool
}

// Links form a forest: a reference's row names its person (and whether she
// is anchored by a candidate's record); a person's own hash has no row
// until she merges into another, when it gets one naming that one. So a
// new person costs no row of her own, and there is no index by person (a
// random-keyed index costs a page write per insert on the ingest path):
// readers follow rows to their end, and erasure walks the forest
// backwards (aliases), which is rare.

// readLinks reads the links of the references (keyed hashes) and follows
// each to the person it ends at.
func (s *Store) readLinks(query func(string, ...any) (*sql.Rows, error), queryRow func(string, ...any) *sql.Row, refs []any) (map[string]link, error) {
	rows, err := query(`SELECT l.ref, l.person, l.person_kind, p.ref IS NOT NULL FROM subject_links l
		LEFT JOIN subject_links p ON p.ref = l.person WHERE l.ref IN (?`+strings.Repeat(", ?", len(refs)-1)+`)`, refs...)
	if err != nil {
		return nil, fmt.Errorf("read subject links: %w", err)
	}
	known := map[string]link{}
	var merged []string
	for rows.Next() {
		var ref, person, kind string
		var moved bool
		if err := rows.Scan(&ref, &person, &kind, &moved); err != nil {
			rows.Close()
			return nil, err
		}
		known[ref] = link{person, kind == veil.RefCandidate}
		if moved {
			merged = append(merged, ref)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, ref := range merged {
		k, err := finalPerson(queryRow, known[ref])
		if err != nil {
			return nil, err
		}
		known[ref] = k
	}
	return known, nil
}

// finalPerson follows a person who merged into another to the one she
// ends at: a person has a row of her own only once she merged.
func finalPerson(queryRow func(string, ...any) *sql.Row, k link) (link, error) {
	for range 32 {
		var next, kind string
		err := queryRow(`SELECT person, person_kind FROM subject_links WHERE ref = ?`, k.person).Scan(&next, &kind)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && next == k.person) {
			return k, nil
		} else if err != nil {
			return link{}, fmt.Errorf("read subject links: %w", err)
		}
		k = link{next, kind == veil.RefCandidate}
	}
	return k, nil
}

// pickPerson chooses the person references belong to, given what the
// links say of some of them. The candidate's record decides: her person,
// or (first seen) a person of her own. Without one, an erased person
// first (a link never undoes an erasure), then one anchored by a
// candidate, then any known one, else the first reference starts a
// person. merge are the other persons the references were linked to that
// join the chosen one: those not anchored by a candidate of their own
// (an application seen before its candidate), and, when Veil links by
// email, those an email reference found. Two candidates' records are
// never merged through an application or an offer both claim: the
// conflicting links stay as they are (conflicts), so neither person's
// data is erased or reported with the other's.
func (s *Store) pickPerson(refs []subjectRef, known map[string]link) (person string, merge, conflicts []string) {
	type found struct {
		link
		byEmail bool
	}
	var persons []found
	for _, r := range refs {
		l, ok := known[r.hash]
		if !ok {
			continue
		}
		i := slices.IndexFunc(persons, func(f found) bool { return f.person == l.person })
		if i < 0 {
			persons = append(persons, found{l, r.kind == veil.RefEmail})
		} else if r.kind == veil.RefEmail {
			persons[i].byEmail = true
		}
	}
	if refs[0].kind == veil.RefCandidate {
		person = refs[0].hash
		if l, ok := known[refs[0].hash]; ok {
			person = l.person
		}
	}
	for _, want := range []func(found) bool{
		func(f found) bool { return s.isErased(f.person) },
		func(f found) bool { return f.anchored },
		func(found) bool { return true },
	} {
		if person != "" {
			break
		}
		if i := slices.IndexFunc(persons, want); i >= 0 {
			person = persons[i].person
		}
	}
	if person == "" {
		person = refs[0].hash
	}
	for _, f := range persons {
		switch {
		case f.person == person:
		case !f.anchored || f.byEmail:
			merge = append(merge, f.person)
		default:
			conflicts = append(conflicts, f.person)
		}
	}
	return person, merge, conflicts
}

// links are the batch's view of subject_links: what it read and what it
// wrote, and the persons it merged into others.
type links struct {
	known  map[string]link   // ref -> its link
	absent map[string]bool   // refs the batch read are not linked yet
	merged map[string]string // person -> the person it merged into
}

// prefetchLinks reads, in one statement for the whole batch, the links of
// every reference its webhooks name (SQLite; PostgreSQL reads them in
// prefetch): a statement per event was a tenth of the writer's time.
func (s *Store) prefetchLinks(tx *wtx, ops []*op) error {
	var refs []any
	for _, o := range ops {
		if o.ingest != nil {
			for _, r := range o.ingest.refs {
				refs = append(refs, r.hash)
			}
		}
	}
	if len(refs) == 0 {
		return nil
	}
	tx.links = &links{known: map[string]link{}, absent: map[string]bool{}, merged: map[string]string{}}
	for start := 0; start < len(refs); start += 500 {
		chunk := refs[start:min(len(refs), start+500)]
		got, err := s.readLinks(tx.queryStale, tx.queryRowStale, chunk)
		if err != nil {
			return err
		}
		for _, r := range chunk {
			if k, ok := got[r.(string)]; ok {
				tx.links.known[r.(string)] = k
			} else {
				tx.links.absent[r.(string)] = true
			}
		}
	}
	return nil
}

// current follows merges from p to the person it is now.
func (l *links) current(p string) string {
	for i := 0; i < 8; i++ { // merges chain at most a few times in one batch
		next, ok := l.merged[p]
		if !ok {
			return p
		}
		p = next
	}
	return p
}

// linkTx links an event's references to one person inside the ingest
// transaction and returns the person, whether she is erased, and whether a
// person not erased was merged into an erased one (her keys must then be
// shredded too). Every reference not yet known is linked; persons the
// references were linked to before merge into the chosen one.
func (s *Store) linkTx(tx *wtx, refs []subjectRef, now int64) (person string, erased, cascade bool, err error) {
	if tx.links == nil {
		tx.links = &links{known: map[string]link{}, absent: map[string]bool{}, merged: map[string]string{}}
	}
	l := tx.links
	var missing []any
	for _, r := range refs {
		if _, ok := l.known[r.hash]; ok || l.absent[r.hash] {
			continue
		}
		if tx.pre != nil { // PostgreSQL: the batch's links were prefetched
			if k, ok := tx.pre.links[r.hash]; ok && k.person != "" {
				l.known[r.hash] = k
			} else if ok {
				missing = append(missing, r.hash) // merged: follow her rows
			}
			continue
		}
		missing = append(missing, r.hash)
	}
	if len(missing) > 0 {
		got, err := s.readLinks(tx.queryStale, tx.queryRowStale, missing)
		if err != nil {
			return "", false, false, err
		}
		for ref, k := range got {
			l.known[ref] = k
		}
	}
	known := make(map[string]link, len(refs))
	for _, r := range refs {
		if k, ok := l.known[r.hash]; ok {
			if cur := l.current(k.person); cur != k.person {
				k = link{cur, l.known[cur].anchored}
			}
			known[r.hash] = k
		}
	}
	person, merge, conflicts := s.pickPerson(refs, known)
	anchored := refs[0].kind == veil.RefCandidate || known[person].anchored
	if k, ok := l.known[person]; ok {
		anchored = anchored || k.anchored
	}
	erased = s.isErased(person)
	for _, m := range merge {
		erased = erased || s.isErased(m)
	}
	kind := veil.RefApplication // what person is: anchored by a candidate or not
	if anchored {
		kind = veil.RefCandidate
	}
	for _, m := range merge {
		// Merge: m's own row now names person, so every reference of m
		// ends at person, and whatever was sealed under m is hers.
		tx.queue(`INSERT INTO subject_links (ref, person, person_kind, linked_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (ref) DO UPDATE SET person = excluded.person, person_kind = excluded.person_kind`, m, person, kind, now)
		l.merged[m] = person
		cascade = cascade || (erased && !s.isErased(m))
	}
	cascade = cascade || (erased && len(merge) > 0 && !s.isErased(person))
	if len(conflicts) > 0 {
		s.Logger.Warn("an event names records Veil links to different candidates; they are not merged",
			"people", len(conflicts)+1)
	}
	owned := func(r subjectRef) bool {
		k, ok := known[r.hash]
		return !ok || k.person == person || slices.Contains(merge, k.person)
	}
	for _, r := range refs {
		if _, ok := known[r.hash]; ok || !owned(r) {
			continue
		}
		l.known[r.hash] = link{person, anchored}
		if r.hash != person && !slices.Contains(merge, r.hash) {
			// A plain INSERT, merged with the batch's others: this batch
			// read the row is not there (another replica racing it fails
			// the batch, which then runs write by write and finds the row).
			tx.queue(`INSERT INTO subject_links (ref, person, person_kind, linked_at) VALUES (?, ?, ?, ?)`,
				r.hash, person, kind, now)
		}
		if erased && !s.isErased(r.hash) {
			// A new reference of an erased person is erased too: an event
			// naming only it is refused like the others, and what was
			// stored under it before (a person of its own, its candidate
			// unknown then) is shredded.
			cascade = cascade || r.hash != person
			tx.queue(`INSERT INTO erasures (subject, at, lifted) VALUES (?, ?, 0)`, r.hash, now)
		}
	}
	if _, ok := l.known[person]; !ok || anchored {
		l.known[person] = link{person, anchored} // the batch's view of her own hash
	}
	return person, erased, cascade, nil
}

// personOfRef returns the person a reference belongs to: through its link,
// or, for data stored before links were kept, the reference itself when
// some event (or, with byAudit, some audit row) names it.
// ErrUnknownSubject when nothing does.
func (s *Store) personOfRef(ctx context.Context, ref string, byAudit bool) (string, error) {
	h := s.SubjectHash(ref)
	var person string
	err := s.rdb.QueryRowContext(ctx, `SELECT person FROM subject_links WHERE ref = ?`, h).Scan(&person)
	if err == nil {
		k, err := finalPerson(func(q string, args ...any) *sql.Row { return s.rdb.QueryRowContext(ctx, q, args...) }, link{person: person})
		return k.person, err
	} else if !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("resolve subject: %w", err)
	}
	var n int
	if err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM events WHERE subject = ? LIMIT 1) x`, h).Scan(&n); err != nil {
		return "", fmt.Errorf("resolve subject: %w", err)
	}
	if n == 0 && byAudit {
		if err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM audit WHERE subject = ? LIMIT 1) x`, h).Scan(&n); err != nil {
			return "", fmt.Errorf("resolve subject: %w", err)
		}
	}
	if n == 0 {
		return "", ErrUnknownSubject
	}
	return h, nil
}

// aliases returns every reference (keyed hash) linked to person, person
// included.
func (s *Store) aliases(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, person string) ([]string, error) {
	rows, err := q.QueryContext(ctx, aliasesQuery, person)
	if err != nil {
		return nil, fmt.Errorf("read subject links: %w", err)
	}
	refs, err := readStrings(rows)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(refs, person) {
		refs = append(refs, person)
	}
	slices.Sort(refs)
	return refs, nil
}

// aliasesQuery walks the link forest back from a person: every reference
// whose rows end at her.
const aliasesQuery = `WITH RECURSIVE a(ref) AS (SELECT ? UNION SELECT l.ref FROM subject_links l JOIN a ON l.person = a.ref)
	SELECT ref FROM a`

// Person returns the person a subject reference belongs to and every
// reference (keyed hash) linked to her; ErrUnknownSubject when Veil holds
// nothing about the reference.
func (s *Store) Person(ctx context.Context, ref string) (person string, refs []string, err error) {
	if person, err = s.personOfRef(ctx, ref, true); err != nil {
		return "", nil, err
	}
	refs, err = s.aliases(ctx, s.rdb, person)
	return person, refs, err
}

// Tombstone is an erased person as the store keeps her: keyed hashes and
// times only.
type Tombstone struct {
	Person         string
	ErasedAt       int64
	Receipt        []byte // the signed receipt of the erasure, JSON
	RestoredAt     int64  // 0 while erased
	RestoredReason string
}

// TombstoneOf returns the tombstone of person, nil when she was never
// erased.
func (s *Store) TombstoneOf(ctx context.Context, person string) (*Tombstone, error) {
	t := &Tombstone{Person: person}
	var receipt string
	var restored sql.NullInt64
	err := s.rdb.QueryRowContext(ctx, `SELECT erased_at, receipt, restored_at, restored_reason FROM tombstones WHERE person = ?`, person).
		Scan(&t.ErasedAt, &receipt, &restored, &t.RestoredReason)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("read tombstone: %w", err)
	}
	t.Receipt, t.RestoredAt = []byte(receipt), restored.Int64
	return t, nil
}

// SaveReceipt keeps the signed receipt of a person's erasure with her
// tombstone, so a second erasure returns it.
func (s *Store) SaveReceipt(ctx context.Context, person string, receipt []byte) error {
	return s.write(ctx, func(tx *wtx) error {
		_, err := tx.execText(`UPDATE tombstones SET receipt = ? WHERE person = ?`, string(receipt), person)
		return err
	})
}

// Erase erases the person a subject reference belongs to (GDPR Art. 17):
// every data key of every reference linked to her is deleted, so each of
// her payloads and outbound bodies, wherever a copy of the file went,
// becomes unreadable; her waiting deliveries are cancelled; the dedup
// hashes of her requests go; and a tombstone stays (keyed hashes only), so
// her later events are stored without payload and delivered nowhere. A
// new salt keys her pseudonyms from now on. It writes one erased audit
// row with actor, and returns its seq and hash.
//
// A reference Veil holds nothing about is ErrUnknownSubject; a person
// already erased is not erased again: the result has Already set and the
// first erasure's receipt.
func (s *Store) Erase(ctx context.Context, ref, actor string) (veil.Erasure, error) {
	person, err := s.personOfRef(ctx, ref, true)
	if err != nil {
		return veil.Erasure{}, err
	}
	res := veil.Erasure{Subject: person, Cancelled: map[string]int64{}}
	if t, err := s.TombstoneOf(ctx, person); err != nil {
		return res, err
	} else if t != nil && t.RestoredAt == 0 {
		res.Already, res.Receipt = true, t.Receipt
		return res, nil
	}
	if err := s.shred(ctx, person, actor, &res, true); err != nil {
		return res, err
	}
	return res, nil
}

// shred deletes the keys of every reference of person and cancels what
// waits, in one transaction; with tombstone it also writes her tombstone
// (a new salt) and the erased audit row, and fills res with what it did.
// Without, it shreds what a link added to a person already erased.
func (s *Store) shred(ctx context.Context, person, actor string, res *veil.Erasure, tombstone bool) error {
	refs, err := s.aliases(ctx, s.rdb, person)
	if err != nil {
		return err
	}
	scanned := s.Now().Add(-60e9).UnixNano() // events after this are looked for again, in the transaction
	ids, err := s.eventsOf(ctx, refs)
	if err != nil {
		return err
	}
	salt := make([]byte, 16)
	rand.Read(salt)
	err = s.write(ctx, func(tx *wtx) error {
		// Links learned since the read above (another event of hers
		// committed meanwhile) count too.
		rows, err := tx.queryText(aliasesQuery, person)
		if err != nil {
			return fmt.Errorf("read subject links: %w", err)
		}
		more, err := readStrings(rows)
		if err != nil {
			return err
		}
		all := dedupStrings(append(slices.Clone(refs), more...))
		in, args := inList(all)
		rows, err = tx.queryText(`SELECT id FROM events WHERE received_at >= ? AND subject IN `+in, append([]any{scanned}, args...)...)
		if err != nil {
			return fmt.Errorf("find the subject's events: %w", err)
		}
		recent, err := readStrings(rows)
		if err != nil {
			return err
		}
		evs := dedupStrings(append(slices.Clone(ids), recent...))
		res.Events, res.DataKeys, res.References, res.Cancelled = int64(len(evs)), 0, len(all), map[string]int64{}
		epochs := map[int64]bool{0: true}
		for start := 0; start < len(evs); start += 500 {
			chunk := evs[start:min(len(evs), start+500)]
			cin, cargs := inList(chunk)
			cancelled, err := s.expireWaiting(tx, `d.event_id IN `+cin, cargs, "erased", "erased: the subject was erased")
			if err != nil {
				return err
			}
			for d, n := range cancelled {
				res.Cancelled[d] += n
			}
			// The dedup hashes are derived from the subject's requests: they go too.
			if _, err := tx.execText(`UPDATE events SET dedup = NULL, body_dedup = NULL WHERE id IN `+cin, cargs...); err != nil {
				return fmt.Errorf("delete dedup hashes: %w", err)
			}
			rows, err := tx.queryText(`SELECT DISTINCT key_epoch FROM events WHERE id IN `+cin, cargs...)
			if err != nil {
				return fmt.Errorf("find the subject's keys: %w", err)
			}
			for rows.Next() {
				var e int64
				if err := rows.Scan(&e); err != nil {
					rows.Close()
					return err
				}
				epochs[e] = true
			}
			rows.Close()
		}
		now := s.Now().UnixNano()
		for e := range epochs {
			r, err := tx.execText(`DELETE FROM data_keys WHERE epoch = ? AND subject IN `+in, append([]any{e}, args...)...)
			if err != nil {
				return fmt.Errorf("delete data keys: %w", err)
			}
			n, _ := r.RowsAffected()
			res.DataKeys += n
		}
		evict := map[string]bool{}
		for _, r := range all {
			if tombstone || !s.isErased(r) {
				if _, err := tx.execText(`INSERT INTO erasures (subject, at, lifted) VALUES (?, ?, 0)`, r, now); err != nil {
					return fmt.Errorf("record erasure: %w", err)
				}
			}
			evict[r] = true
		}
		s.evictSubjects(evict)
		cancelled := int64(0)
		for _, n := range res.Cancelled {
			cancelled += n
		}
		if !tombstone {
			return s.appendTx(tx, &veil.AuditEntry{Action: veil.ActionErased, Actor: "veil", Subject: person, Outcome: "linked_after_erasure",
				Detail: fmt.Sprintf("references=%d events=%d deliveries_cancelled=%d data_keys_deleted=%d", len(all), res.Events, cancelled, res.DataKeys)})
		}
		if _, err := tx.execText(`INSERT INTO tombstones (person, erased_at, salt) VALUES (?, ?, ?)
			ON CONFLICT (person) DO UPDATE SET erased_at = excluded.erased_at, salt = excluded.salt, receipt = '',
			restored_at = NULL, restored_reason = ''`, person, now, salt); err != nil {
			return fmt.Errorf("record tombstone: %w", err)
		}
		return s.appendTx(tx, &veil.AuditEntry{Action: veil.ActionErased, Actor: actor, Subject: person, Outcome: "erased",
			Detail: fmt.Sprintf("references=%d events=%d deliveries_cancelled=%d data_keys_deleted=%d", len(all), res.Events, cancelled, res.DataKeys)})
	})
	if err != nil {
		return err
	}
	if err := s.readErased(ctx); err != nil {
		return err
	}
	if tombstone {
		// The erased row, now sealed into the chain: the receipt names it.
		err = s.rdb.QueryRowContext(ctx, `SELECT seq, hash FROM audit WHERE action = 'erased' AND subject = ? ORDER BY seq DESC LIMIT 1`,
			person).Scan(&res.AuditSeq, &res.AuditHash)
		if err != nil {
			return fmt.Errorf("read the erased audit row: %w", err)
		}
	}
	return nil
}

// Restore lifts the tombstone of the person a reference belongs to, when
// she comes back with new consent: her later events are stored and
// delivered again (her erased payloads stay unreadable; her pseudonyms use
// the salt her erasure made). Audited as subject_restored with actor and
// reason.
func (s *Store) Restore(ctx context.Context, ref, actor, reason string) (string, error) {
	person, err := s.personOfRef(ctx, ref, true)
	if err != nil {
		return "", err
	}
	t, err := s.TombstoneOf(ctx, person)
	if err != nil {
		return "", err
	}
	if t == nil || t.RestoredAt != 0 {
		return "", ErrNotErased
	}
	refs, err := s.aliases(ctx, s.rdb, person)
	if err != nil {
		return "", err
	}
	err = s.write(ctx, func(tx *wtx) error {
		now := s.Now().UnixNano()
		for _, r := range refs {
			if _, err := tx.execText(`INSERT INTO erasures (subject, at, lifted) VALUES (?, ?, 1)`, r, now); err != nil {
				return fmt.Errorf("record restore: %w", err)
			}
		}
		if _, err := tx.execText(`UPDATE tombstones SET restored_at = ?, restored_reason = ? WHERE person = ?`, now, reason, person); err != nil {
			return fmt.Errorf("lift tombstone: %w", err)
		}
		return s.appendTx(tx, &veil.AuditEntry{Action: veil.ActionSubjectRestored, Actor: actor, Subject: person, Outcome: "restored",
			Detail: "reason=" + reason})
	})
	if err != nil {
		return "", err
	}
	return person, s.readErased(ctx)
}

// readErased brings the erased set up to the log at once, after this
// process wrote to it.
func (s *Store) readErased(ctx context.Context) error {
	return s.refreshErased(func(q string, args ...any) (*sql.Rows, error) { return s.rdb.QueryContext(ctx, q, args...) })
}

// eventsOf returns the ids of the events of any of the references, read
// outside the write lock.
func (s *Store) eventsOf(ctx context.Context, refs []string) ([]string, error) {
	in, args := inList(refs)
	rows, err := s.rdb.QueryContext(ctx, `SELECT id FROM events WHERE subject IN `+in, args...)
	if err != nil {
		return nil, fmt.Errorf("find the subject's events: %w", err)
	}
	return readStrings(rows)
}

// inList returns "(?, ?, …)" for vs and vs as arguments.
func inList(vs []string) (string, []any) {
	return "(?" + strings.Repeat(", ?", len(vs)-1) + ")", anys(vs)
}

// SubjectRows returns the audit rows of the person a reference belongs
// to, oldest first: those of every reference linked to her.
func (s *Store) SubjectRows(ctx context.Context, ref string) ([]veil.AuditEntry, error) {
	_, refs, err := s.Person(ctx, ref)
	if err != nil {
		return nil, err
	}
	var out []veil.AuditEntry
	err = s.Export(ctx, veil.AuditFilter{Subjects: refs}, func(e *veil.AuditEntry) error {
		out = append(out, *e)
		return nil
	})
	return out, err
}

// Holdings counts what the store holds of the references' events: sealed
// payloads and outbound bodies, and when the oldest and newest still held
// arrived.
func (s *Store) Holdings(ctx context.Context, refs []string) (veil.Holdings, error) {
	var h veil.Holdings
	if len(refs) == 0 {
		return h, nil
	}
	in, args := inList(refs)
	var oldest, newest sql.NullInt64
	err := s.rdb.QueryRowContext(ctx, `SELECT count(*), min(e.received_at), max(e.received_at) FROM events e
		JOIN payloads p ON p.event_id = e.id
		JOIN data_keys k ON k.epoch = e.key_epoch AND k.subject = e.subject WHERE e.subject IN `+in, args...).
		Scan(&h.Payloads, &oldest, &newest)
	if err != nil {
		return h, fmt.Errorf("count what is held: %w", err)
	}
	err = s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM deliveries d JOIN outbound_bodies o ON o.delivery_id = d.id
		JOIN events e ON e.id = d.event_id JOIN data_keys k ON k.epoch = e.key_epoch AND k.subject = d.subject
		WHERE d.subject IN `+in, args...).Scan(&h.OutboundBodies)
	if err != nil {
		return h, fmt.Errorf("count what is held: %w", err)
	}
	if oldest.Valid {
		o, n := time.Unix(0, oldest.Int64).UTC(), time.Unix(0, newest.Int64).UTC()
		h.Oldest, h.Newest = &o, &n
	}
	return h, nil
}

// noticeSubject is the subject Veil's own subject.erased notices are sealed
// under: not a person's, so the erasure that causes them leaves them
// readable until they are delivered (they hold no personal value).
const noticeSubject = "veil:notices"

// QueueNotice queues a subject.erased notice (body: ids and pseudonyms, no
// name) to destination, as an event of Veil's own with one delivery,
// retried and audited like any other.
func (s *Store) QueueNotice(ctx context.Context, destination string, body []byte) (veil.Notice, error) {
	now := s.Now().UTC()
	e := &veil.Event{ID: veil.NewID("evt_"), Source: "veil", Vendor: "veil", EventType: veil.TypeSubjectErased, ReceivedAt: now}
	d := &veil.Delivery{ID: veil.NewID("dlv_"), Destination: destination, Status: veil.DeliveryPending, Body: body}
	subject := s.SubjectHash(noticeSubject)
	epoch := epochOf(now)
	err := s.write(ctx, func(tx *wtx) error {
		key, err := s.dataKey(tx, subject, epoch)
		if err != nil {
			return err
		}
		tx.queue(`INSERT INTO events (id, source, vendor, event_type, subject, dedup, body_dedup, received_at,
			key_epoch, upstream) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, e.ID, e.Source, e.Vendor, e.EventType, subject,
			nil, nil, now.UnixNano(), epoch, nil)
		return s.insertDelivery(tx, e, subject, key, d)
	})
	if err != nil {
		return veil.Notice{}, fmt.Errorf("queue notice: %w", err)
	}
	return veil.Notice{Destination: destination, Delivery: d.ID, Queued: now}, nil
}

// PersonEvents calls fn with every event of the references whose payload
// is still held, oldest first, decrypted (for the copy of Art. 15(3)).
func (s *Store) PersonEvents(ctx context.Context, refs []string, fn func(*veil.Event) error) error {
	if len(refs) == 0 {
		return nil
	}
	in, args := inList(refs)
	rows, err := s.rdb.QueryContext(ctx, `SELECT id FROM events WHERE subject IN `+in+` ORDER BY received_at`, args...)
	if err != nil {
		return fmt.Errorf("list the subject's events: %w", err)
	}
	ids, err := readStrings(rows)
	if err != nil {
		return err
	}
	for _, id := range ids {
		e, err := s.Event(ctx, id)
		if errors.Is(err, ErrGone) {
			continue
		} else if err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// BackfillLinks links the references of the events stored before Veil kept
// subject links (version 11), once: refs gives an event's references, read
// from its payload, decrypted in memory only. An event whose payload is no
// longer held keeps its subject as its own person. It returns how many
// events it linked; 0 once done.
func (s *Store) BackfillLinks(ctx context.Context, refs func(*veil.Event) []string) (int, error) {
	var done string
	err := s.rdb.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'links_backfilled'`).Scan(&done)
	if err == nil {
		return 0, nil
	} else if !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("read backfill state: %w", err)
	}
	n := 0
	err = s.Events(ctx, func(e *veil.Event) error {
		rs := refs(e)
		if len(rs) == 0 {
			return nil
		}
		sr := s.subjectRefs(rs)
		if !slices.ContainsFunc(sr, func(r subjectRef) bool { return r.hash == e.Subject }) {
			// The subject the event was sealed under is one of the person's.
			sr = append(sr, subjectRef{hash: e.Subject, kind: veil.RefEvent})
		}
		n++
		return s.write(ctx, func(tx *wtx) error {
			_, _, _, err := s.linkTx(tx, sr, e.ReceivedAt.UnixNano())
			return err
		})
	}, nil)
	if err != nil {
		return n, fmt.Errorf("link stored events: %w", err)
	}
	return n, s.write(ctx, func(tx *wtx) error {
		_, err := tx.execText(`INSERT INTO meta (key, value) VALUES ('links_backfilled', '1') ON CONFLICT (key) DO NOTHING`)
		return err
	})
}
