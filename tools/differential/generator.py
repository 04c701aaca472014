"""A seeded generator of random, stateful Placement request sequences.

`Generator(seed).actions()` yields actions; an action is a Python generator
that yields `Request`s and is sent back upstream's `Response` to each (the
reference answer), from which it updates the model of the world it keeps
(providers, trees, inventories, classes, traits, consumers) so that later
requests are plausible: mostly valid, with a share of every kind of
mistake. Every uuid is chosen here, from the seed, so that both servers see
the same ones; the one exception, `POST /resource_providers` without a
uuid, is marked `learn_uuid` and the runner maps the two generated uuids.
"""
import json
import random
import uuid as uuidlib

MAX_MINOR = 39

STANDARD_RCS = ['VCPU', 'MEMORY_MB', 'DISK_GB', 'PCI_DEVICE', 'SRIOV_NET_VF',
                'IPV4_ADDRESS', 'VGPU', 'PCPU', 'NET_BW_EGR_KILOBIT_PER_SEC']
STANDARD_TRAITS = ['HW_CPU_X86_AVX2', 'HW_CPU_X86_SSE2', 'STORAGE_DISK_SSD',
                   'COMPUTE_VOLUME_MULTI_ATTACH', 'MISC_SHARES_VIA_AGGREGATE',
                   'HW_NIC_SRIOV', 'COMPUTE_STATUS_DISABLED']
CUSTOM_RCS = ['CUSTOM_MAGIC', 'CUSTOM_GOLD', 'CUSTOM_FPGA_X', 'CUSTOM_BW']
CUSTOM_TRAITS = ['CUSTOM_RED', 'CUSTOM_BLUE', 'CUSTOM_RAID', 'CUSTOM_FAST_NET']
PROJECTS = ['proj-a', 'proj-b', '6b0f2c7a9e5d4a1b8c3e7f9d2a4b6c8e']
USERS = ['user-1', 'user-2']
CONSUMER_TYPES = ['INSTANCE', 'MIGRATION', 'CUSTOM_X']
BAD_VERSIONS = ['1.40', '0.9', '2.0', '1.2.3', 'pony', '1.', '-1.5', '1.99',
                ' 1.5', '1.05', 'latest ', 'LATEST', '1,5']
BAD_CONTENT_TYPES = [None, 'text/plain', 'application/x-www-form-urlencoded',
                     'application/json; charset=UTF-8',
                     'application/jsonx', 'application/json-patch+json', '']
ACCEPTS = ['*/*', 'text/html', 'application/xml', 'application/json;q=0.5, text/html',
           'text/*', 'application/*', 'application/json, text/plain', 'image/png']


class Request:
    __slots__ = ('method', 'path', 'headers', 'body', 'minor', 'write', 'learn_uuid',
                 'kind', 'undo')

    def __init__(self, method, path, headers, body=None, minor=None, write=False,
                 learn_uuid=False, kind='', undo=None):
        # undo: (method, path) that removes what this write makes, sent to the
        # one side that took it when the allowlist explains the difference.
        self.undo = undo
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
        self.minor = minor          # effective microversion minor, None if invalid
        self.write = write
        self.learn_uuid = learn_uuid
        self.kind = kind

    def describe(self):
        lines = ['%s %s' % (self.method, self.path)]
        lines.append('  headers: %s' % json.dumps(self.headers))
        if self.body is not None:
            text = self.body.decode('utf-8', 'replace')
            if len(text) > 1500:
                text = text[:1500] + '...'
            lines.append('  body: %s' % text)
        return '\n'.join(lines)


def q(value):
    """Percent-encode a query value the way clients do (keep , : ! safe)."""
    from urllib.parse import quote
    return quote(str(value), safe=',:!')


class Generator:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.seed = seed
        # the model, from upstream's answers
        self.providers = {}        # uuid -> {'name', 'parent'}
        self.inventories = {}      # uuid -> {rc: record}
        self.custom_rcs = set()
        self.custom_traits = set()
        self.consumers = {}        # uuid -> {'project', 'user', 'providers': set}
        # Consumers upstream keeps with no allocations (an empty write for a
        # new consumer creates its record and nothing deletes it; see the
        # allowlist's empty-consumer-kept): left out of POST /allocations and
        # the reshaper, and only ever given {} by PUT.
        self.phantoms = set()
        self.aggregates = [self.uuid() for _ in range(4)]
        self.consumer_pool = [self.uuid() for _ in range(10)]
        self.name_counter = 0

    # ----------------------------------------------------------- helpers
    def uuid(self):
        return str(uuidlib.UUID(int=self.rng.getrandbits(128), version=4))

    def chance(self, p):
        return self.rng.random() < p

    def pick(self, seq):
        seq = list(seq)
        return self.rng.choice(seq) if seq else None

    def sample(self, seq, lo, hi):
        seq = list(seq)
        n = min(len(seq), self.rng.randint(lo, hi))
        return self.rng.sample(seq, n)

    def new_name(self):
        self.name_counter += 1
        return 'rp-%d-%d' % (self.seed, self.name_counter)

    def mv(self, lo=0, hi=MAX_MINOR):
        """(header value or None, effective minor or None)."""
        r = self.rng.random()
        if r < 0.72:
            # mostly where the operation exists, biased towards recent ones
            m = max(self.rng.randint(lo, hi), self.rng.randint(lo, hi))
            return '1.%d' % m, m
        if r < 0.86:
            m = self.rng.randint(0, MAX_MINOR)
            return '1.%d' % m, m
        if r < 0.93:
            return 'latest', MAX_MINOR
        if r < 0.96:
            return None, 0
        return self.pick(BAD_VERSIONS), None

    def headers(self, mv, content_type='application/json', accept=None, odd=0.04):
        h = {'X-Auth-Token': 'admin'}
        if mv is not None:
            h['OpenStack-API-Version'] = 'placement ' + mv
        if content_type is not None:
            if self.chance(odd):
                ct = self.pick(BAD_CONTENT_TYPES)
                if ct is not None:
                    h['Content-Type'] = ct
            else:
                h['Content-Type'] = content_type
        if accept is not None:
            h['Accept'] = accept
        elif self.chance(odd):
            h['Accept'] = self.pick(ACCEPTS)
        return h

    def dump(self, obj, malform=0.03):
        text = json.dumps(obj)
        if self.chance(malform):
            choice = self.rng.randint(0, 4)
            if choice == 0:
                text = text[:max(1, len(text) // 2)]
            elif choice == 1:
                text = text + '}'
            elif choice == 2:
                text = '[' + text + ']'
            elif choice == 3:
                text = "{'single': 'quotes'}"
            else:
                text = ''
        return text.encode()

    def req(self, method, path, mv, body=None, write=None, content=True, **kw):
        hdr, minor = mv
        data = None if body is None else (body if isinstance(body, bytes) else self.dump(body))
        headers = self.headers(hdr, 'application/json' if (content and data is not None)
                               else None, odd=kw.pop('odd', 0.04))
        if write is None:
            write = method != 'GET'
        return Request(method, path, headers, data, minor, write, **kw)

    def get(self, path, mv, **kw):
        return self.req('GET', path, mv, **kw)

    def eff(self, minor):
        """A microversion minor to shape a body for (invalid header: any)."""
        return minor if minor is not None else self.rng.randint(0, MAX_MINOR)

    def some_provider(self, p_unknown=0.05):
        if not self.providers or self.chance(p_unknown):
            return self.uuid()
        return self.pick(list(self.providers))

    def provider_with_inventory(self):
        have = [u for u in self.providers if self.inventories.get(u)]
        return self.pick(have)

    def all_rcs(self):
        return STANDARD_RCS + sorted(self.custom_rcs)

    def all_traits(self):
        return STANDARD_TRAITS + sorted(self.custom_traits)

    def some_rc(self, p_unknown=0.05):
        if self.chance(p_unknown):
            return self.pick(['CUSTOM_NOPE', 'NOPE', 'vcpu', 'CUSTOM_' + 'X' * 260])
        if self.chance(0.3):
            return self.pick(CUSTOM_RCS)
        return self.pick(STANDARD_RCS[:6])

    def some_trait(self, p_unknown=0.05):
        if self.chance(p_unknown):
            return self.pick(['CUSTOM_NOPE', 'HW_NOT_A_TRAIT', 'lower_case'])
        if self.chance(0.35):
            return self.pick(CUSTOM_TRAITS)
        return self.pick(STANDARD_TRAITS)

    def roots(self):
        return [u for u, p in self.providers.items() if p['parent'] is None]

    def descendants(self, u):
        out, todo = set(), [u]
        while todo:
            cur = todo.pop()
            for k, p in self.providers.items():
                if p['parent'] == cur and k not in out:
                    out.add(k)
                    todo.append(k)
        return out

    def in_order(self, uuids):
        """Providers in creation order (server-generated uuids sort
        differently from run to run)."""
        return [u for u in self.providers if u in uuids]

    def root_of(self, u):
        seen = set()
        while u in self.providers and self.providers[u]['parent'] and u not in seen:
            seen.add(u)
            u = self.providers[u]['parent']
        return u

    def forget_provider(self, u):
        self.providers.pop(u, None)
        self.inventories.pop(u, None)

    def generation_of(self, resp, key='resource_provider_generation'):
        if resp is not None and isinstance(resp.json, dict):
            g = resp.json.get(key, resp.json.get('generation'))
            if isinstance(g, int):
                return g
        return None

    def fudge_generation(self, g):
        if g is None:
            return self.rng.randint(0, 5)
        r = self.rng.random()
        if r < 0.08:
            return g + self.pick([-1, 1, 7])
        if r < 0.10:
            return self.pick(['1', None, -1, 1.5])
        return g

    # ----------------------------------------------------------- actions
    def actions(self):
        table = [
            (self.rp_create, 10), (self.rp_get, 3), (self.rp_update, 4),
            (self.rp_delete, 2), (self.rp_list, 8),
            (self.inv_get, 3), (self.inv_put_all, 9), (self.inv_one, 5),
            (self.inv_delete, 2),
            (self.rc_ops, 4), (self.trait_ops, 4), (self.rp_traits, 5),
            (self.rp_aggregates, 5),
            (self.alloc_put, 10), (self.alloc_read, 4), (self.alloc_post, 4),
            (self.alloc_delete, 2), (self.reshaper, 3),
            (self.usages, 4), (self.candidates, 10), (self.protocol, 4),
        ]
        funcs = [f for f, _ in table]
        weights = [w for _, w in table]
        while True:
            if len(self.providers) < 3 and self.chance(0.7):
                yield self.rp_create
            elif (self.providers and not any(self.inventories.values())
                  and self.chance(0.7)):
                yield self.inv_put_all
            else:
                yield self.rng.choices(funcs, weights)[0]

    # providers -------------------------------------------------------
    def rp_create(self):
        mv = self.mv()
        m = self.eff(mv[1])
        body = {'name': self.new_name()}
        given_uuid = None
        if self.chance(0.85):
            given_uuid = self.uuid()
            body['uuid'] = given_uuid
        if m >= 14 and self.providers and self.chance(0.45):
            body['parent_provider_uuid'] = self.some_provider(0.05)
        r = self.rng.random()
        if r < 0.04 and self.providers:
            body['name'] = self.providers[self.pick(list(self.providers))]['name']
        elif r < 0.07 and self.providers:
            body['uuid'] = self.pick(list(self.providers))
        elif r < 0.09:
            body['name'] = self.pick(['', 'x' * 201, 42, None, 'a/b', '  spaced  ', 'ünïcode'])
        elif r < 0.11:
            # (no upper-case or hyphenless uuids in writes: see the
            # allowlist's uuid-spelling)
            body['uuid'] = self.pick(['not-a-uuid', 12, '', 'g' * 32])
        elif r < 0.13:
            body['extra'] = 'key'
        elif r < 0.14:
            del body['name']
        elif r < 0.16:
            body['parent_provider_uuid'] = self.pick([None, 'not-a-uuid', self.uuid()])
        elif r < 0.17:
            body = self.pick([[], 'name', {'name': {'nested': 1}}])
        learn = 'uuid' not in body if isinstance(body, dict) else False
        resp = yield self.req('POST', '/resource_providers', mv, body, learn_uuid=learn,
                              kind='rp_create')
        if resp.status in (200, 201) and isinstance(body, dict):
            u = body.get('uuid')
            if not u:
                loc = resp.header('location') or ''
                u = loc.rstrip('/').rsplit('/', 1)[-1]
            self.providers[u] = {'name': body['name'],
                                 'parent': body.get('parent_provider_uuid')}
            self.inventories[u] = {}

    def rp_get(self):
        u = self.some_provider(0.1)
        if self.chance(0.05):
            u = self.pick(['not-a-uuid', u.upper(), u.replace('-', '')])
        yield self.get('/resource_providers/%s' % u, self.mv(), kind='rp_get')

    def rp_update(self):
        if not self.providers:
            return
        u = self.pick(list(self.providers))
        mv = self.mv()
        m = self.eff(mv[1])
        cur = self.providers[u]
        body = {'name': cur['name'] if self.chance(0.3) else self.new_name()}
        if m >= 14 and self.chance(0.7):
            r = self.rng.random()
            desc = self.descendants(u)
            others = [x for x in self.providers if x not in desc and x != u]
            if r < 0.35:
                body['parent_provider_uuid'] = cur['parent']
            elif r < 0.65 and others:
                body['parent_provider_uuid'] = self.pick(others)       # re-parent
            elif r < 0.8:
                body['parent_provider_uuid'] = None                     # un-parent
            elif r < 0.9 and desc:
                body['parent_provider_uuid'] = self.pick(self.in_order(desc))  # a loop
            elif r < 0.95:
                body['parent_provider_uuid'] = u                        # itself
            else:
                body['parent_provider_uuid'] = self.uuid()              # unknown
        r = self.rng.random()
        if r < 0.05 and len(self.providers) > 1:
            other = self.pick([x for x in self.providers if x != u])
            body['name'] = self.providers[other]['name']
        elif r < 0.08:
            body['uuid'] = u
        elif r < 0.10:
            body.pop('name')
        elif r < 0.12:
            body['generation'] = 3
        if self.chance(0.04):
            u = self.uuid()
        resp = yield self.req('PUT', '/resource_providers/%s' % u, mv, body, kind='rp_update')
        if resp.status == 200 and u in self.providers:
            self.providers[u]['name'] = body['name']
            if 'parent_provider_uuid' in body:
                self.providers[u]['parent'] = body['parent_provider_uuid']

    def rp_delete(self):
        if self.providers and self.chance(0.6):
            # prefer leaves, but sometimes one with children
            leaves = [u for u in self.providers if not self.descendants(u)]
            u = self.pick(leaves) if leaves and self.chance(0.7) else self.pick(list(self.providers))
        else:
            u = self.some_provider(0.5)
        resp = yield self.req('DELETE', '/resource_providers/%s' % u, self.mv(), kind='rp_delete')
        if resp.status == 204:
            self.forget_provider(u)

    def member_of_value(self, m):
        aggs = self.aggregates + ([self.uuid()] if self.chance(0.1) else [])
        r = self.rng.random()
        if r < 0.4:
            v = self.pick(aggs)
        else:
            v = 'in:' + ','.join(self.sample(aggs, 1, 3))
        if m >= 32 and self.chance(0.25) or self.chance(0.03):
            v = '!' + v
        if self.chance(0.03):
            v = self.pick(['in:', 'not-a-uuid', 'in:%s,!%s' % (aggs[0], aggs[1]),
                           '!!' + aggs[0], 'in:' + aggs[0] + ',', ''])
        return v

    def required_value(self, m):
        traits = self.all_traits() + CUSTOM_TRAITS
        r = self.rng.random()
        if m >= 39 and r < 0.25:
            return 'in:' + ','.join(self.sample(traits, 1, 3))
        items = []
        for t in self.sample(traits, 1, 3):
            if (m >= 22 and self.chance(0.3)) or self.chance(0.03):
                t = '!' + t
            items.append(t)
        v = ','.join(items)
        if self.chance(0.04):
            v = self.pick(['', 'in:', 'in:!HW_CPU_X86_AVX2', 'HW_CPU_X86_AVX2,',
                           'CUSTOM_NOPE', '!', 'in:CUSTOM_RED,!CUSTOM_BLUE'])
        return v

    def resources_value(self, max_amount=8):
        items = []
        for rc in self.sample(self.all_rcs()[:6] + sorted(self.custom_rcs), 1, 3):
            amount = self.rng.randint(1, max_amount)
            if rc == 'MEMORY_MB':
                amount *= 256
            items.append('%s:%d' % (rc, amount))
        v = ','.join(items)
        if self.chance(0.05):
            v = self.pick(['VCPU', 'VCPU:', 'VCPU:0', 'VCPU:-1', 'NOPE:1', 'CUSTOM_NOPE:1',
                           'VCPU:1,VCPU:2', 'VCPU:1,', '', 'VCPU:a', 'VCPU:1.5'])
        return v

    def resources_from_inventory(self, max_amount=4):
        """`RC:amount,...` that some provider could give: its classes, a
        small amount honouring min_unit and step_size."""
        u = self.provider_with_inventory()
        if u is None or self.chance(0.15):
            return self.resources_value(max_amount)
        items = []
        for rc in self.sample(sorted(self.inventories[u]), 1, 2):
            rec = self.inventories[u][rc]
            step = rec.get('step_size', 1) or 1
            amount = max(rec.get('min_unit', 1) or 1, step)
            amount = amount * self.rng.randint(1, 2)
            items.append('%s:%d' % (rc, amount))
        return ','.join(items)

    def rp_list(self):
        mv = self.mv()
        m = self.eff(mv[1])
        params = []
        if self.chance(0.2) and self.providers:
            params.append(('name', self.providers[self.pick(list(self.providers))]['name']
                           if self.chance(0.8) else 'nope'))
        if self.chance(0.15):
            params.append(('uuid', self.some_provider(0.2) if self.chance(0.95) else 'bad'))
        if self.chance(0.35):
            n = 2 if (m >= 24 and self.chance(0.3)) else 1
            for _ in range(n):
                params.append(('member_of', self.member_of_value(m)))
        if self.chance(0.35):
            params.append(('resources', self.resources_from_inventory()
                           if self.chance(0.5) else self.resources_value()))
        if self.chance(0.35):
            n = 2 if (m >= 39 and self.chance(0.3)) else 1
            for _ in range(n):
                params.append(('required', self.required_value(m)))
        if self.chance(0.2):
            params.append(('in_tree', self.some_provider(0.15) if self.chance(0.95) else 'bad'))
        if self.chance(0.03):
            params.append((self.pick(['pony', 'limit', 'resources1', 'name']),
                           self.pick(['1', '', 'x'])))
        self.rng.shuffle(params)
        qs = '&'.join('%s=%s' % (k, q(v)) for k, v in params)
        yield self.get('/resource_providers' + ('?' + qs if qs else ''), mv, kind='rp_list')

    # inventories -----------------------------------------------------
    def inventory_record(self, rc, bad=0.15):
        total = self.rng.choice([1, 2, 4, 8, 16, 64, 1024])
        if rc == 'MEMORY_MB':
            total *= 1024
        rec = {'total': total}
        if self.chance(0.5):
            rec['reserved'] = self.rng.randint(0, max(0, total // 4))
        if self.chance(0.3):
            rec['min_unit'] = self.rng.choice([1, 1, 2])
        if self.chance(0.4):
            rec['max_unit'] = self.rng.choice([total, max(1, total // 2), 4])
        if self.chance(0.3):
            rec['step_size'] = self.rng.choice([1, 1, 2, 4])
        if self.chance(0.3):
            rec['allocation_ratio'] = self.rng.choice([1.0, 1.5, 16.0, 0.5])
        if self.chance(bad):
            r = self.rng.randint(0, 13)
            if r == 0:
                rec['total'] = 0
            elif r == 1:
                rec['total'] = -1
            elif r == 2:
                rec['reserved'] = rec['total'] + 1
            elif r == 3:
                rec['reserved'] = rec['total']
            elif r == 4:
                rec['min_unit'], rec['max_unit'] = 8, 2
            elif r == 5:
                rec['step_size'] = 0
            elif r == 6:
                rec['total'] = '8'
            elif r == 7:
                rec['allocation_ratio'] = 0
            elif r == 8:
                rec['unknown_field'] = 1
            elif r == 9:
                rec['total'] = 2 ** 31
            elif r == 10:
                rec['max_unit'] = 0
            elif r == 11:
                rec.pop('total')
            elif r == 12:
                rec['min_unit'] = rec['total'] + 1
            else:
                rec['allocation_ratio'] = 'x'
        return rec

    def inv_get(self):
        u = self.some_provider(0.08)
        if self.chance(0.5) or not self.inventories.get(u):
            path = '/resource_providers/%s/inventories' % u
        else:
            rc = self.pick(sorted(self.inventories[u])) if self.chance(0.85) else self.some_rc(0.3)
            path = '/resource_providers/%s/inventories/%s' % (u, rc)
        yield self.get(path, self.mv(), kind='inv_get')

    def read_generation(self, u, what='inventories'):
        """GET something carrying the provider's generation; None if not."""
        if not self.chance(0.9):
            return None
        resp = yield self.get('/resource_providers/%s/%s' % (u, what)
                              if what else '/resource_providers/%s' % u,
                              ('1.%d' % MAX_MINOR, MAX_MINOR), odd=0, kind='read_generation')
        return self.generation_of(resp)

    def inv_put_all(self):
        u = self.some_provider(0.04)
        g = yield from self.read_generation(u)
        mv = self.mv()
        m = self.eff(mv[1])
        invs = {}
        cur = self.inventories.get(u, {})
        if cur and self.chance(0.4):
            invs = {rc: dict(rec) for rc, rec in cur.items()}
            # change or drop one
            rc = self.pick(sorted(invs))
            if self.chance(0.3):
                invs.pop(rc)
            else:
                invs[rc] = self.inventory_record(rc)
        else:
            for rc in self.sample(self.all_rcs()[:6] + sorted(self.custom_rcs), 1, 3):
                invs[rc] = self.inventory_record(rc)
        if self.chance(0.05):
            invs[self.some_rc(1.0)] = self.inventory_record('X', 0)
        if self.chance(0.03):
            invs = {}
        body = {'resource_provider_generation': self.fudge_generation(g), 'inventories': invs}
        r = self.rng.random()
        if r < 0.03:
            body.pop('resource_provider_generation')
        elif r < 0.05:
            body['extra'] = 1
        elif r < 0.06:
            body['inventories'] = []
        resp = yield self.req('PUT', '/resource_providers/%s/inventories' % u, mv, body,
                              kind='inv_put_all')
        if resp.status == 200 and isinstance(resp.json, dict):
            self.inventories[u] = dict(resp.json.get('inventories', {}))

    def inv_one(self):
        u = self.some_provider(0.04)
        g = yield from self.read_generation(u)
        mv = self.mv()
        have = sorted(self.inventories.get(u, {}))
        rc = self.pick(have) if have and self.chance(0.6) else self.some_rc(0.1)
        rec = self.inventory_record(rc)
        rec['resource_provider_generation'] = self.fudge_generation(g)
        if self.chance(0.4):
            # POST one (create); a class it already has is a 409
            rec['resource_class'] = rc
            if self.chance(0.03):
                rec.pop('resource_class')
            resp = yield self.req('POST', '/resource_providers/%s/inventories' % u, mv, rec,
                                  kind='inv_post')
            if resp.status == 201 and isinstance(resp.json, dict):
                self.inventories.setdefault(u, {})[rc] = resp.json
        else:
            if self.chance(0.03):
                rec.pop('resource_provider_generation')
            resp = yield self.req('PUT', '/resource_providers/%s/inventories/%s' % (u, rc),
                                  mv, rec, kind='inv_put_one')
            if resp.status == 200 and isinstance(resp.json, dict):
                self.inventories.setdefault(u, {})[rc] = resp.json

    def inv_delete(self):
        u = self.some_provider(0.04)
        mv = self.mv()
        if self.chance(0.35):
            resp = yield self.req('DELETE', '/resource_providers/%s/inventories' % u, mv,
                                  kind='inv_delete_all')
            if resp.status == 204:
                self.inventories[u] = {}
        else:
            have = sorted(self.inventories.get(u, {}))
            rc = self.pick(have) if have and self.chance(0.8) else self.some_rc(0.2)
            resp = yield self.req('DELETE', '/resource_providers/%s/inventories/%s' % (u, rc),
                                  mv, kind='inv_delete_one')
            if resp.status == 204:
                self.inventories.get(u, {}).pop(rc, None)

    # resource classes and traits --------------------------------------
    def rc_ops(self):
        mv = self.mv(2)
        m = self.eff(mv[1])
        r = self.rng.random()
        name = self.pick(CUSTOM_RCS) if self.chance(0.8) else self.some_rc(0.4)
        if r < 0.2:
            yield self.get('/resource_classes', mv, kind='rc_list')
        elif r < 0.35:
            yield self.get('/resource_classes/%s' % name, mv, kind='rc_get')
        elif r < 0.55:
            body = {'name': name}
            if self.chance(0.1):
                body = self.pick([{'name': 'NOT_CUSTOM'}, {'name': 'CUSTOM_lower'}, {},
                                  {'name': name, 'x': 1}, {'name': 'CUSTOM_' + 'A' * 250}])
            resp = yield self.req('POST', '/resource_classes', mv, body, kind='rc_post')
            if resp.status == 201:
                self.custom_rcs.add(body['name'])
        elif r < 0.8:
            if m >= 7 and self.chance(0.9):
                resp = yield self.req('PUT', '/resource_classes/%s' % name, mv,
                                      b'{}' if self.chance(0.05) else None, kind='rc_put')
                if resp.status in (201, 204):
                    self.custom_rcs.add(name)
            else:
                new = self.pick(CUSTOM_RCS + ['CUSTOM_RENAMED', 'VCPU'])
                resp = yield self.req('PUT', '/resource_classes/%s' % name, mv,
                                      {'name': new}, kind='rc_put_old')
                if resp.status == 200:
                    self.custom_rcs.discard(name)
                    self.custom_rcs.add(new)
        else:
            resp = yield self.req('DELETE', '/resource_classes/%s' % name, mv, kind='rc_delete')
            if resp.status == 204:
                self.custom_rcs.discard(name)

    def trait_ops(self):
        mv = self.mv(6)
        r = self.rng.random()
        name = self.pick(CUSTOM_TRAITS) if self.chance(0.8) else self.some_trait(0.4)
        if r < 0.3:
            params = []
            if self.chance(0.4):
                params.append(('name', 'in:' + ','.join(self.sample(self.all_traits() + CUSTOM_TRAITS, 1, 4))))
            elif self.chance(0.4):
                params.append(('name', 'startswith:' + self.pick(['CUSTOM', 'HW_CPU_X86_A', 'MISC', 'x'])))
            if self.chance(0.4):
                params.append(('associated', self.pick(['true', 'false', 'True', 'yes'])))
            if self.chance(0.04):
                params.append(self.pick([('name', 'CUSTOM_RED'), ('pony', '1'), ('name', 'in:')]))
            qs = '&'.join('%s=%s' % (k, q(v)) for k, v in params)
            yield self.get('/traits' + ('?' + qs if qs else ''), mv, kind='trait_list')
        elif r < 0.45:
            yield self.get('/traits/%s' % name, mv, kind='trait_get')
        elif r < 0.8:
            resp = yield self.req('PUT', '/traits/%s' % name, mv,
                                  b'{}' if self.chance(0.05) else None, kind='trait_put')
            if resp.status in (201, 204):
                self.custom_traits.add(name)
        else:
            resp = yield self.req('DELETE', '/traits/%s' % name, mv, kind='trait_delete')
            if resp.status == 204:
                self.custom_traits.discard(name)

    def rp_traits(self):
        u = self.some_provider(0.05)
        mv = self.mv(6)
        r = self.rng.random()
        if r < 0.3:
            yield self.get('/resource_providers/%s/traits' % u, mv, kind='rp_traits_get')
        elif r < 0.85:
            g = yield from self.read_generation(u, 'traits')
            traits = self.sample(self.all_traits() + CUSTOM_TRAITS, 0, 3)
            if self.chance(0.05):
                traits.append(self.pick(['HW_NOT_A_TRAIT', 'CUSTOM_NOPE', traits[0] if traits else 'lower']))
            body = {'traits': traits, 'resource_provider_generation': self.fudge_generation(g)}
            x = self.rng.random()
            if x < 0.03:
                body.pop('resource_provider_generation')
            elif x < 0.05:
                body['traits'] = 'HW_CPU_X86_AVX2'
            elif x < 0.06:
                body['extra'] = True
            yield self.req('PUT', '/resource_providers/%s/traits' % u, mv, body,
                           kind='rp_traits_put')
        else:
            yield self.req('DELETE', '/resource_providers/%s/traits' % u, mv,
                           kind='rp_traits_delete')

    def rp_aggregates(self):
        u = self.some_provider(0.05)
        mv = self.mv(1)
        m = self.eff(mv[1])
        if self.chance(0.3):
            yield self.get('/resource_providers/%s/aggregates' % u, mv, kind='rp_aggs_get')
            return
        aggs = self.sample(self.aggregates, 0, 3)
        if self.chance(0.05):
            aggs.append(self.pick(['not-a-uuid', aggs[0] if aggs else self.uuid()]))
        if m >= 19 and not self.chance(0.05) or (m < 19 and self.chance(0.05)):
            g = yield from self.read_generation(u, 'aggregates')
            body = {'aggregates': aggs, 'resource_provider_generation': self.fudge_generation(g)}
            if self.chance(0.03):
                body.pop('resource_provider_generation')
        else:
            body = aggs
        yield self.req('PUT', '/resource_providers/%s/aggregates' % u, mv, body,
                       kind='rp_aggs_put')

    # allocations -----------------------------------------------------
    def amount_for(self, u, rc):
        rec = self.inventories.get(u, {}).get(rc)
        if not rec:
            return self.rng.randint(1, 4)
        step = rec.get('step_size', 1) or 1
        lo = rec.get('min_unit', 1) or 1
        hi = rec.get('max_unit', rec.get('total', 1)) or 1
        cap = int((rec.get('total', 1) - rec.get('reserved', 0)) * rec.get('allocation_ratio', 1.0))
        hi = max(lo, min(hi, max(1, cap // 3)))
        amt = self.rng.randint(lo, hi)
        amt = max(step, amt - amt % step)
        r = self.rng.random()
        if r < 0.05:
            amt = cap + 1                     # over capacity
        elif r < 0.08:
            amt = hi + step                   # over max_unit
        elif r < 0.10:
            amt = 0
        elif r < 0.11 and step > 1:
            amt = step + 1
        return amt

    def pick_allocations(self):
        """{rp: {rc: amount}} over 1-2 providers that have inventory."""
        out = {}
        have = [u for u in self.providers if self.inventories.get(u)]
        for u in self.sample(have, 1, 2):
            rcs = self.sample(sorted(self.inventories[u]), 1, 2)
            out[u] = {rc: self.amount_for(u, rc) for rc in rcs}
        if self.chance(0.04):
            out[self.uuid()] = {'VCPU': 1}
        if self.chance(0.04) and out:
            out[self.pick(list(out))][self.some_rc(0.5)] = 1
        return out

    def alloc_body(self, m, consumer, allocs, consumer_gen=None, for_post=False):
        if m < 12 and not for_post:
            body = {'allocations': [{'resource_provider': {'uuid': u}, 'resources': res}
                                    for u, res in allocs.items()]}
        else:
            body = {'allocations': {u: {'resources': res} for u, res in allocs.items()}}
            if self.chance(0.1):
                for v in body['allocations'].values():
                    v['generation'] = 99
        info = self.consumers.get(consumer)
        project = info['project'] if info and self.chance(0.8) else self.pick(PROJECTS)
        user = info['user'] if info and self.chance(0.8) else self.pick(USERS)
        if m >= 8 or self.chance(0.5):
            body['project_id'] = project
            body['user_id'] = user
            if self.chance(0.03):
                body.pop(self.pick(['project_id', 'user_id']))
        if m >= 28 or (self.chance(0.05)):
            body['consumer_generation'] = consumer_gen
        if m >= 38 and self.chance(0.8) or self.chance(0.03):
            body['consumer_type'] = self.pick(CONSUMER_TYPES + (['lower'] if self.chance(0.05) else []))
        if (m >= 34 and self.chance(0.3) or self.chance(0.02)) and isinstance(body['allocations'], dict):
            body['mappings'] = {'': list(allocs)[:1]} if allocs else {}
            if self.chance(0.3):
                body['mappings'] = {'_G1': list(allocs), 'x': []}
        r = self.rng.random()
        if r < 0.03:
            body['extra'] = 1
        elif r < 0.05 and isinstance(body['allocations'], dict):
            body['allocations'] = []
        elif r < 0.06:
            body['project_id'] = 7
        return body, project, user

    def consumer_generation(self, c, m):
        """GET /allocations/{c} at 1.28+ for the consumer generation."""
        if m < 28:
            return None
        if not self.chance(0.85):
            return self.pick([None, 0, 1, 5])
        resp = yield self.get('/allocations/%s' % c, ('1.%d' % MAX_MINOR, MAX_MINOR), odd=0,
                              kind='read_consumer_generation')
        g = self.generation_of(resp, 'consumer_generation')
        if self.chance(0.07):
            g = self.pick([None, (g or 0) + 1, 0])
        return g

    def note_consumer(self, c, body, allocs):
        if not allocs:
            if c not in self.consumers:
                self.phantoms.add(c)
            self.consumers.pop(c, None)
            return
        self.phantoms.discard(c)
        self.consumers[c] = {'project': body.get('project_id', 'unknown'),
                             'user': body.get('user_id', 'unknown'),
                             'providers': set(allocs)}

    def note_leaked_consumers(self, resp, consumers):
        """Upstream creates new consumers' records before it looks the
        providers up; a 400 for a provider that does not exist leaves them."""
        if resp.status == 400 and b'that does not exist' in resp.body:
            for c in consumers:
                if c not in self.consumers:
                    self.phantoms.add(c)

    def alloc_put(self):
        c = self.pick(self.consumer_pool)
        mv = self.mv(0)
        m = self.eff(mv[1])
        cg = yield from self.consumer_generation(c, m)
        allocs = self.pick_allocations() if not self.chance(0.06) else {}
        kind = 'alloc_put'
        if c in self.phantoms:
            # Only {} for a consumer upstream keeps empty: whichever side
            # refuses it, neither database changes (allocations there would
            # bump provider generations on one side only).
            allocs, kind = {}, 'alloc_put_empty_consumer'
        body, _, _ = self.alloc_body(m, c, allocs, cg)
        if self.chance(0.02):
            c = self.pick(['not-a-uuid', c.replace('-', '')])
        resp = yield self.req('PUT', '/allocations/%s' % c, mv, body, kind=kind)
        if resp.status == 204:
            self.note_consumer(c, body, allocs)
        self.note_leaked_consumers(resp, [c])

    def alloc_read(self):
        mv = self.mv()
        if self.chance(0.5):
            c = self.pick(self.consumer_pool) if self.chance(0.9) else self.pick(['bad', self.uuid()])
            yield self.get('/allocations/%s' % c, mv, kind='alloc_get')
        else:
            yield self.get('/resource_providers/%s/allocations' % self.some_provider(0.1), mv,
                           kind='rp_allocations_get')

    def alloc_delete(self):
        c = self.pick(self.consumer_pool)
        resp = yield self.req('DELETE', '/allocations/%s' % c, self.mv(), kind='alloc_delete')
        if resp.status == 204:
            self.consumers.pop(c, None)

    def alloc_post(self):
        mv = self.mv(13)
        m = self.eff(mv[1])
        body = {}
        plan = {}
        for c in self.sample(sorted(set(self.consumer_pool) - self.phantoms), 1, 3):
            cg = yield from self.consumer_generation(c, m)
            allocs = self.pick_allocations() if not self.chance(0.15) else {}
            b, _, _ = self.alloc_body(max(m, 12), c, allocs, cg, for_post=True)
            body[c] = b
            plan[c] = allocs
        if self.chance(0.03):
            body['not-a-uuid'] = {'allocations': {}}
        if self.chance(0.02):
            body = []
        resp = yield self.req('POST', '/allocations', mv, body, kind='alloc_post')
        if resp.status == 204:
            for c, allocs in plan.items():
                self.note_consumer(c, body[c], allocs)
        self.note_leaked_consumers(resp, list(plan))

    def reshaper(self):
        mv = self.mv(30)
        m = self.eff(mv[1])
        roots = self.roots()
        if not roots:
            return
        root = self.pick(roots)
        tree = [root] + self.in_order(self.descendants(root))
        inventories = {}
        for u in self.sample(tree, 1, 2):
            g = yield from self.read_generation(u)
            invs = {}
            for rc in self.sample(self.all_rcs()[:6], 1, 3):
                invs[rc] = self.inventory_record(rc, bad=0.05)
            inventories[u] = {'resource_provider_generation': self.fudge_generation(g),
                              'inventories': invs}
        allocations = {}
        plan = {}
        for c in self.sample(sorted(set(self.consumer_pool) - self.phantoms), 0, 2):
            cg = yield from self.consumer_generation(c, 39)
            allocs = {}
            for u in self.sample(list(inventories), 1, 1):
                res = {}
                for rc, rec in self.sample(list(inventories[u]['inventories'].items()), 1, 2):
                    res[rc] = max(1, rec.get('min_unit', 1) if isinstance(rec.get('min_unit', 1), int) else 1)
                allocs[u] = res
            b, _, _ = self.alloc_body(39, c, allocs, cg, for_post=True)
            if m < 38:
                b.pop('consumer_type', None)
            b.pop('mappings', None)
            allocations[c] = b
            plan[c] = allocs
        body = {'inventories': inventories, 'allocations': allocations}
        r = self.rng.random()
        if r < 0.04:
            body.pop('allocations')
        elif r < 0.06:
            body['extra'] = {}
        elif r < 0.07:
            body['inventories'] = {}
        req = self.req('POST', '/reshaper', mv, body, kind='reshaper')
        if self.chance(0.85):
            # the secure defaults give the reshaper to the service role only
            req.headers['X-Roles'] = 'admin,service'
        resp = yield req
        self.note_leaked_consumers(resp, list(plan))
        if resp.status == 204:
            for u, v in inventories.items():
                self.inventories[u] = v['inventories']
            for c, allocs in plan.items():
                self.note_consumer(c, allocations[c], allocs)

    def usages(self):
        mv = self.mv(9)
        m = self.eff(mv[1])
        if self.chance(0.4):
            yield self.get('/resource_providers/%s/usages' % self.some_provider(0.1), mv,
                           kind='rp_usages')
            return
        params = []
        if not self.chance(0.04):
            params.append(('project_id', self.pick(PROJECTS) if self.chance(0.95) else ''))
        if self.chance(0.4):
            params.append(('user_id', self.pick(USERS)))
        if (m >= 38 and self.chance(0.6)) or self.chance(0.04):
            params.append(('consumer_type', self.pick(CONSUMER_TYPES + ['all', 'unknown', 'ALL', 'bad-type'])))
        if self.chance(0.03):
            params.append(('pony', '1'))
        qs = '&'.join('%s=%s' % (k, q(v)) for k, v in params)
        yield self.get('/usages' + ('?' + qs if qs else ''), mv, kind='usages')

    def candidates(self):
        mv = self.mv(10)
        m = self.eff(mv[1])
        params = []
        suffixes = []
        if not self.chance(0.04):
            params.append(('resources', self.resources_from_inventory()))
        if m >= 17 and self.chance(0.35) or self.chance(0.02):
            for _ in range(2 if m >= 39 and self.chance(0.2) else 1):
                params.append(('required', self.required_value(m)))
        if m >= 21 and self.chance(0.3) or self.chance(0.02):
            for _ in range(2 if m >= 24 and self.chance(0.2) else 1):
                params.append(('member_of', self.member_of_value(m)))
        if m >= 25 and self.chance(0.45) or self.chance(0.02):
            for i in range(self.rng.randint(1, 3)):
                if m >= 33 and self.chance(0.5):
                    s = self.pick(['_NET', '_COMPUTE', '_a-b', '_' + 'x' * 65, '_ACCEL'])
                else:
                    s = str(self.rng.randint(1, 3))
                if s in suffixes:
                    continue
                suffixes.append(s)
                resourceless = m >= 36 and self.chance(0.15)
                if not resourceless:
                    params.append(('resources' + s, self.resources_from_inventory(2)))
                if self.chance(0.4) or resourceless:
                    params.append(('required' + s, self.required_value(m)))
                if self.chance(0.2):
                    params.append(('member_of' + s, self.member_of_value(m)))
                if m >= 31 and self.chance(0.1):
                    params.append(('in_tree' + s, self.some_provider(0.2)))
            if len(suffixes) > 1 and not self.chance(0.1) or self.chance(0.2):
                params.append(('group_policy', self.pick(['none', 'isolate', 'isolate', 'bad'])))
        if m >= 31 and self.chance(0.15) or self.chance(0.02):
            params.append(('in_tree', self.some_provider(0.15)))
        if m >= 35 and self.chance(0.2) or self.chance(0.02):
            params.append(('root_required', ','.join(
                ('!' if self.chance(0.4) else '') + t
                for t in self.sample(self.all_traits(), 1, 2))))
        if m >= 36 and suffixes and self.chance(0.3) or self.chance(0.02):
            ss = self.sample(suffixes or ['_X', '1'], 1, 3)
            if self.chance(0.1):
                ss.append('_NOPE')
            params.append(('same_subtree', ','.join(ss)))
        if m >= 16 and self.chance(0.25) or self.chance(0.02):
            params.append(('limit', self.pick(['1', '2', '3', '5', '0', '-1', 'x', '1000'])))
        if self.chance(0.03):
            params.append(('pony', '1'))
        qs = '&'.join('%s=%s' % (k, q(v)) for k, v in params)
        yield self.get('/allocation_candidates' + ('?' + qs if qs else ''), mv,
                       kind='candidates')

    # protocol --------------------------------------------------------
    def protocol(self):
        r = self.rng.random()
        u = self.some_provider(0.2)
        if r < 0.12:
            yield self.get('/', self.mv(), kind='root')
        elif r < 0.27:
            # wrong method on a known path
            path, method = self.pick([
                ('/resource_providers', 'DELETE'), ('/resource_providers/%s' % u, 'POST'),
                ('/resource_classes', 'PUT'), ('/traits', 'POST'),
                ('/resource_providers/%s/usages' % u, 'PUT'), ('/allocations', 'GET'),
                ('/allocation_candidates', 'POST'), ('/usages', 'DELETE'),
                ('/reshaper', 'GET'), ('/resource_providers/%s/aggregates' % u, 'POST'),
                ('/resource_providers/%s/inventories' % u, 'PATCH'), ('/', 'POST'),
                ('/resource_providers/%s/allocations' % u, 'DELETE'),
                ('/resource_providers/%s/inventories' % u, 'DELETE'),
            ])
            yield self.req(method, path, self.mv(), None, kind='wrong_method')
        elif r < 0.35:
            path = self.pick(['/nope', '/resource_providers/%s/nope' % u,
                              '/resource_providers/', '/traits/', '/allocations/',
                              '/resource_classes/VCPU/extra', '//resource_providers'])
            yield self.get(path, self.mv(), kind='unknown_path')
        elif r < 0.5:
            # a body write with an odd content type
            ct = self.pick(BAD_CONTENT_TYPES + ['APPLICATION/JSON', 'Application/Json'])
            mv = self.mv()
            h = self.headers(mv[0], None, odd=0)
            if ct is not None:
                h['Content-Type'] = ct
            body = json.dumps({'name': self.new_name(), 'uuid': self.uuid()}).encode()
            if self.chance(0.2):
                body = b''
            undo = None
            if body:
                undo = ('DELETE', '/resource_providers/%s' % json.loads(body)['uuid'])
            resp = yield Request('POST', '/resource_providers', h, body, mv[1], True,
                                 kind='odd_content_type', undo=undo)
            if resp.status in (200, 201):
                d = json.loads(body)
                self.providers[d['uuid']] = {'name': d['name'], 'parent': None}
                self.inventories[d['uuid']] = {}
        elif r < 0.65:
            # Accept variations on reads
            mv = self.mv()
            h = self.headers(mv[0], None, accept=self.pick(ACCEPTS), odd=0)
            path = self.pick(['/resource_providers', '/resource_providers/%s' % u,
                              '/resource_classes', '/traits', '/', '/usages?project_id=x',
                              '/allocation_candidates?resources=VCPU:1'])
            yield Request('GET', path, h, None, mv[1], False, kind='accept')
        elif r < 0.72:
            # no token
            mv = self.mv()
            h = self.headers(mv[0], None, odd=0)
            h.pop('X-Auth-Token')
            yield Request('GET', self.pick(['/resource_providers', '/']), h, None, mv[1],
                          False, kind='no_token')
        elif r < 0.8:
            # an odd microversion header
            h = {'X-Auth-Token': 'admin',
                 'OpenStack-API-Version': self.pick(['compute 1.5', 'placement', 'placement  1.5',
                                                     'placement 1.5, compute 2.1',
                                                     'PLACEMENT 1.20', 'placement latest',
                                                     'placement 1.005'])}
            yield Request('GET', self.pick(['/resource_providers', '/traits', '/usages?project_id=a']),
                          h, None, None, False, kind='odd_version')
        elif r < 0.9:
            # bodies of the wrong shape on writes
            mv = self.mv()
            target = self.pick([
                ('PUT', '/resource_providers/%s/inventories' % u),
                ('PUT', '/resource_providers/%s/traits' % u),
                ('PUT', '/resource_providers/%s/aggregates' % u),
                ('PUT', '/allocations/%s' % self.pick(self.consumer_pool)),
                ('POST', '/allocations'), ('POST', '/reshaper'),
                ('POST', '/resource_classes'), ('PUT', '/resource_providers/%s' % u),
            ])
            body = self.pick([b'null', b'[]', b'"x"', b'1', b'{', b'{"a": 1}', b'',
                              b'{"allocations": null}', b'\xff\xfe', b'{"inventories": {}}'])
            yield Request(target[0], target[1], self.headers(mv[0], 'application/json', odd=0),
                          body, mv[1], True, kind='bad_body')
        else:
            # a bodiless PUT/POST that needs one
            mv = self.mv()
            target = self.pick([('POST', '/resource_providers'),
                                ('PUT', '/resource_providers/%s/inventories' % u),
                                ('POST', '/allocations'),
                                ('PUT', '/resource_classes/CUSTOM_GOLD')])
            yield Request(target[0], target[1], self.headers(mv[0], None, odd=0), None, mv[1],
                          True, kind='no_body')
