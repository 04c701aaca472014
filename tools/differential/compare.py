"""Comparing one request's two answers, and the allowlist.

What is compared, per request:
  * the status;
  * on errors: `code` when the answer's microversion is >= 1.23, and the
    error's `title` and `detail` text;
  * on 2xx: the JSON body, with `GET /allocation_candidates` compared as a
    multiset of allocation_requests and a map of provider_summaries (trait
    lists in summaries as sets: upstream returns them in row order);
  * the headers a client reads: `OpenStack-API-Version`, `Vary`, `Location`,
    `Allow` (as a set), whether `Last-Modified` and `Cache-Control` are there,
    and the media type of a body.
Normalised only: request ids (header and `request_id` in error bodies), the
value of `Last-Modified`/`Date`, and uuids this server generated (mapped onto
upstream's for the same request).
"""
import collections
import json
import re

UUID_RE = re.compile(r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}')


def short(value, limit=300):
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit] + '...'


class Divergence:
    def __init__(self, aspect, upstream, ours, note=''):
        self.aspect = aspect
        self.upstream = upstream
        self.ours = ours
        self.note = note

    def __repr__(self):
        return '%s%s: upstream %s | ours %s' % (
            self.aspect, (' [%s]' % self.note) if self.note else '',
            short(self.upstream), short(self.ours))


def json_diffs(a, b, path='', out=None, limit=6):
    """Where two JSON values differ: [(path, a-part, b-part)]."""
    if out is None:
        out = []
    if len(out) >= limit:
        return out
    if isinstance(a, dict) and isinstance(b, dict):
        if list(a) != list(b) and set(a) == set(b):
            pass  # key order is not visible in JSON semantics
        for k in list(a) + [k for k in b if k not in a]:
            if k not in b:
                out.append((path + '/' + str(k), a[k], '<absent>'))
            elif k not in a:
                out.append((path + '/' + str(k), '<absent>', b[k]))
            elif a[k] != b[k]:
                json_diffs(a[k], b[k], path + '/' + str(k), out, limit)
            if len(out) >= limit:
                break
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                json_diffs(x, y, '%s/%d' % (path, i), out, limit)
            if len(out) >= limit:
                break
    elif a != b:
        out.append((path or '/', a, b))
    return out


def body_divergence(aspect, up, rs, note=''):
    diffs = json_diffs(up, rs)
    where = '; '.join('%s: %s vs %s' % (p, short(x, 120), short(y, 120)) for p, x, y in diffs)
    return Divergence(aspect, up, rs, (note + ': ' if note else '') + where)


def answer_minor(resp, fallback):
    value = resp.header('openstack-api-version') or ''
    m = re.match(r'placement 1\.(\d+)$', value)
    return int(m.group(1)) if m else fallback


def mapped_text(resp, rs2up):
    text = resp.body.decode('utf-8', 'replace')
    if rs2up:
        text = UUID_RE.sub(lambda m: rs2up.get(m.group(0), m.group(0)), text)
    return text


def parse(text):
    try:
        return json.loads(text) if text else None
    except ValueError:
        return ValueError


def strip_request_ids(body):
    if isinstance(body, dict) and isinstance(body.get('errors'), list):
        for err in body['errors']:
            if isinstance(err, dict):
                err.pop('request_id', None)
    return body


def canon(obj):
    return json.dumps(obj, sort_keys=True)


LOCAL_ORIGIN_RE = re.compile(r'^http://127\.0\.0\.1:\d+/')


def canon_allocation_request(ar):
    ar = json.loads(json.dumps(ar))
    if isinstance(ar, dict):
        if isinstance(ar.get('allocations'), list):
            ar['allocations'].sort(key=canon)
        if isinstance(ar.get('mappings'), dict):
            for k in ar['mappings']:
                if isinstance(ar['mappings'][k], list):
                    ar['mappings'][k].sort()
    return canon(ar)


def canon_summaries(ps):
    ps = json.loads(json.dumps(ps))
    if isinstance(ps, dict):
        for v in ps.values():
            if isinstance(v, dict) and isinstance(v.get('traits'), list):
                v['traits'].sort()
    return ps


def compare_candidates(up, rs, out):
    if not (isinstance(up, dict) and isinstance(rs, dict)):
        if up != rs:
            out.append(Divergence('body', up, rs))
        return
    if set(up) != set(rs):
        out.append(Divergence('body', sorted(up), sorted(rs), 'top-level keys'))
        return
    ua = collections.Counter(canon_allocation_request(a) for a in up['allocation_requests'])
    ra = collections.Counter(canon_allocation_request(a) for a in rs['allocation_requests'])
    if ua != ra:
        only_up = list((ua - ra).elements())
        only_rs = list((ra - ua).elements())
        out.append(Divergence('body', only_up[:5], only_rs[:5],
                              'allocation_requests differ: %d only upstream, %d only ours '
                              '(of %d / %d)' % (len(only_up), len(only_rs),
                                                len(up['allocation_requests']),
                                                len(rs['allocation_requests']))))
    us, rsum = canon_summaries(up['provider_summaries']), canon_summaries(rs['provider_summaries'])
    if us != rsum:
        keys = sorted(set(us) | set(rsum))
        diff = {k: (us.get(k), rsum.get(k)) for k in keys if us.get(k) != rsum.get(k)}
        out.append(Divergence('body', {k: v[0] for k, v in list(diff.items())[:3]},
                              {k: v[1] for k, v in list(diff.items())[:3]},
                              'provider_summaries differ for %d providers' % len(diff)))


def same_but_order(a, b):
    """True when a and b differ only in the order of some list."""
    def norm(x):
        if isinstance(x, dict):
            return {k: norm(v) for k, v in x.items()}
        if isinstance(x, list):
            return sorted((norm(v) for v in x), key=canon)
        return x
    return norm(a) == norm(b)


def order_of(body):
    """A short picture of a list body's order: its items' names or uuids."""
    def ident(x):
        if isinstance(x, dict):
            return x.get('name') or x.get('uuid') or canon(x)[:40]
        return x
    if isinstance(body, dict):
        return {k: [ident(x) for x in v] if isinstance(v, list) else '...'
                for k, v in body.items()}
    if isinstance(body, list):
        return [ident(x) for x in body]
    return body


def same_words(a, b):
    """The same words (names, numbers) in another order."""
    if not isinstance(a, str) or not isinstance(b, str):
        return False
    words = lambda t: sorted(re.findall(r"[\w.:-]+", t))  # noqa: E731
    return words(a) == words(b)


def media_type(value):
    return (value or '').split(';')[0].strip().lower()


def compare(req, up, rs, rs2up):
    """The list of Divergences between upstream's and our answer."""
    out = []
    if up.status != rs.status:
        out.append(Divergence('status', up.status, rs.status))
        return out
    minor = answer_minor(up, req.minor if req.minor is not None else 0)
    up_text, rs_text = up.body.decode('utf-8', 'replace'), mapped_text(rs, rs2up)
    if req.learn_uuid and up.status >= 400:
        # a refused create names the uuid each server generated for it
        sent = set(UUID_RE.findall(req.path + (req.body or b'').decode('utf-8', 'replace')))
        generated = lambda m: m.group(0) if m.group(0) in sent else '<generated>'  # noqa: E731
        up_text, rs_text = UUID_RE.sub(generated, up_text), UUID_RE.sub(generated, rs_text)
    up_body, rs_body = parse(up_text), parse(rs_text)
    if up.status >= 400:
        strip_request_ids(up_body)
        strip_request_ids(rs_body)
        ue = up_body.get('errors', [{}])[0] if isinstance(up_body, dict) else {}
        re_ = rs_body.get('errors', [{}])[0] if isinstance(rs_body, dict) else {}
        if not isinstance(ue, dict) or not isinstance(re_, dict):
            if up_body != rs_body:
                out.append(Divergence('error-body', up_text[:400], rs_text[:400]))
        else:
            if minor >= 23 and ue.get('code') != re_.get('code'):
                out.append(Divergence('code', ue.get('code'), re_.get('code')))
            for key in ('title', 'detail'):
                if ue.get(key) != re_.get(key):
                    aspect = 'error-text'
                    if same_words(ue.get(key), re_.get(key)):
                        aspect = 'error-text-order'
                    out.append(Divergence(aspect, ue.get(key), re_.get(key), key))
            extra_u = {k: v for k, v in ue.items() if k not in ('code', 'title', 'detail')}
            extra_r = {k: v for k, v in re_.items() if k not in ('code', 'title', 'detail')}
            if extra_u != extra_r:
                out.append(Divergence('error-body', extra_u, extra_r, 'other error fields'))
    elif 200 <= up.status < 300:
        path = req.path.split('?')[0]
        if up_body is ValueError or rs_body is ValueError:
            if up_text != rs_text:
                out.append(Divergence('body', up_text[:400], rs_text[:400], 'not JSON'))
        elif path == '/allocation_candidates' and up.status == 200:
            compare_candidates(up_body, rs_body, out)
        elif up_body != rs_body:
            if same_but_order(up_body, rs_body):
                out.append(Divergence('order', order_of(up_body), order_of(rs_body),
                                      'same items, another order'))
            else:
                out.append(body_divergence('body', up_body, rs_body))
    # headers a client reads
    if up.status != 500:
        for name in ('openstack-api-version', 'vary'):
            if up.header(name) != rs.header(name):
                out.append(Divergence('header', up.header(name), rs.header(name), name))
    loc_u = up.header('location')
    loc_r = rs.header('location')
    if loc_r and rs2up:
        loc_r = UUID_RE.sub(lambda m: rs2up.get(m.group(0), m.group(0)), loc_r)
    # Both are absolute, each naming its own server (the Host header sent).
    loc_u, loc_r = (LOCAL_ORIGIN_RE.sub('http://HOST/', loc) if loc else loc
                    for loc in (loc_u, loc_r))
    if loc_u != loc_r:
        out.append(Divergence('header', loc_u, loc_r, 'location'))
    allow_u = sorted(x.strip() for x in (up.header('allow') or '').split(',') if x.strip())
    allow_r = sorted(x.strip() for x in (rs.header('allow') or '').split(',') if x.strip())
    if allow_u != allow_r:
        out.append(Divergence('header', allow_u, allow_r, 'allow'))
    for name in ('last-modified', 'cache-control'):
        if (up.header(name) is None) != (rs.header(name) is None):
            out.append(Divergence('header', up.header(name), rs.header(name), name))
    if up.header('cache-control') and rs.header('cache-control') and \
            up.header('cache-control') != rs.header('cache-control'):
        out.append(Divergence('header', up.header('cache-control'), rs.header('cache-control'),
                              'cache-control'))
    if up.body and rs.body and up.status != 500:
        if media_type(up.header('content-type')) != media_type(rs.header('content-type')):
            out.append(Divergence('header', up.header('content-type'),
                                  rs.header('content-type'), 'content-type'))
    if bool(up.body) != bool(rs.body) and up.status == rs.status:
        out.append(Divergence('body', up.body[:200], rs.body[:200], 'one side has no body'))
    return out


# ------------------------------------------------------------------ upstream 500s

def known_upstream_500(req, up):
    """Upstream's known PostgreSQL failures: not verdicts (see README.md;
    documented in api-ref/usages.md#get-usages and
    api-ref/allocation_candidates.md#errors)."""
    if up.status != 500:
        return None
    text = up.body.decode('utf-8', 'replace')
    path = req.path.split('?')[0]
    if (req.method == 'GET' and path == '/allocation_candidates'
            and 'InvalidTextRepresentation' in text and 'rptt_forbidden' in text):
        return ('GET /allocation_candidates with forbidden traits on a nested or sharing '
                'path: trait names compared with trait ids (integer) in SQL')
    if req.method == 'GET' and path == '/usages' and 'GroupingError' in text:
        query = req.path.partition('?')[2]
        if re.search(r'(^|&)consumer_type=(all|unknown)(&|$)', query):
            return None
        return ('GET /usages at >= 1.38 without consumer_type=all|unknown: '
                'PostgreSQL GroupingError (MySQL-only GROUP BY)')
    return None


# ------------------------------------------------------------------ allowlist

class Allowlist:
    """Deliberate, documented differences (allowlist.json)."""

    FIELDS = {'id', 'method', 'path', 'min_version', 'max_version', 'aspect',
              'upstream_status', 'ours_status', 'upstream_match', 'ours_match',
              'note_match', 'upstream_value', 'ours_value', 'headers_match', 'kind',
              'state_safe',
              'api_ref', 'why'}

    def __init__(self, path):
        with open(path) as f:
            self.entries = json.load(f)
        for e in self.entries:
            unknown = set(e) - self.FIELDS
            if unknown:
                raise ValueError('allowlist entry %s: unknown fields %s' % (e.get('id'), unknown))
            for need in ('id', 'path', 'aspect', 'api_ref', 'why'):
                if need not in e:
                    raise ValueError('allowlist entry %s lacks %r' % (e.get('id'), need))
        self.used = collections.Counter()

    def explain(self, req, up, rs, div):
        minor = req.minor
        for e in self.entries:
            if e.get('method') and e['method'] != req.method:
                continue
            if e.get('kind') and not re.search(e['kind'], req.kind):
                continue
            if not re.search(e['path'], req.path):
                continue
            if e['aspect'] not in ('*', div.aspect):
                continue
            if 'min_version' in e and (minor is None or minor < e['min_version']):
                continue
            if 'max_version' in e and (minor is None or minor > e['max_version']):
                continue
            if 'upstream_status' in e and up.status != e['upstream_status']:
                continue
            if 'ours_status' in e and rs.status != e['ours_status']:
                continue
            if 'upstream_match' in e and not re.search(
                    e['upstream_match'], up.body.decode('utf-8', 'replace')):
                continue
            if 'ours_match' in e and not re.search(
                    e['ours_match'], rs.body.decode('utf-8', 'replace')):
                continue
            if 'note_match' in e and not re.search(e['note_match'], div.note or ''):
                continue
            if 'upstream_value' in e and not re.search(
                    e['upstream_value'], short(div.upstream, 100000)):
                continue
            if 'ours_value' in e and not re.search(e['ours_value'], short(div.ours, 100000)):
                continue
            if 'headers_match' in e and not re.search(
                    e['headers_match'], json.dumps(req.headers)):
                continue
            self.used[e['id']] += 1
            return e
        return None
