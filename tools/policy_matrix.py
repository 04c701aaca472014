#!/usr/bin/env python3
"""Upstream Placement's own policy decisions, as a matrix, on stdout.

Run with the Python of upstream's virtualenv (../shared/bench/upstream/setup.sh
installs openstack-placement 16.0.0 and its oslo.policy):

    /tmp/placement-upstream-venv/bin/python tools/policy_matrix.py > matrix.json

For every registered placement rule, role set, token scope, target, default
set (oslo.policy `enforce_new_defaults` True and False) and policy file (none,
or one of the override sets below) it records whether upstream allows the
request. The enforcer is upstream's own: `placement.policy.init(conf)` on a
fresh oslo.config ConfigOpts with placement's options registered, as
`placement.deploy.loadapp` builds it, and each decision goes through
`placement.context.RequestContext.can`, the call every handler makes (which
maps oslo's InvalidScope to PolicyNotAuthorized, a 403). Each decision is
cross-checked against a direct `Enforcer.authorize(..., do_raise=False)` on
the context's `to_policy_values()`.

The output is one JSON object: `files` (name -> the YAML text used, so the
consumer loads exactly the same overrides) and `cases` (one object per
decision, with the credentials and target evaluated). tests/integration/
policy_matrix.rs compares every case with placement-rs's enforcer.
"""
import json
import os
import sys
import tempfile

from oslo_config import cfg
from oslo_policy import policy as oslo_policy

from placement import conf as placement_conf
from placement import context as placement_context
from placement import policies
from placement import policy as placement_policy

# The project a target belongs to (the `project_id` a GET /usages queries).
TARGET_PROJECT = 'project-a'
OTHER_PROJECT = 'project-b'
USER = 'user-1'
DOMAIN = 'domain-1'

# Role sets as Keystone expands implied roles into a token.
ROLES = {
    'admin': ['admin', 'manager', 'member', 'reader'],
    'service': ['service'],
    'member': ['member', 'reader'],
    'reader': ['reader'],
    'none': [],
}

# Token scopes: the keyword arguments of the oslo.context RequestContext that
# keystonemiddleware's headers would produce.
SCOPES = {
    # Project-scoped on the target's own project.
    'own_project': {
        'project_id': TARGET_PROJECT,
        'user_domain_id': 'default',
        'project_domain_id': 'default',
    },
    # Project-scoped on another project.
    'other_project': {
        'project_id': OTHER_PROJECT,
        'user_domain_id': 'default',
        'project_domain_id': 'default',
    },
    # System-scoped: `OpenStack-System-Scope: all`, no project.
    'system': {
        'system_scope': 'all',
        'user_domain_id': 'default',
    },
    # Domain-scoped: a domain, no project.
    'domain': {
        'domain_id': DOMAIN,
        'user_domain_id': 'default',
    },
}

# Policy files. `overrides` replaces a few rules with check strings of each
# interesting kind; `edges` exercises the corners of oslo.policy: the
# deprecated rule's name (`rule:admin_api`) overridden, a base rule
# overridden, the rule without scope_types reached by system and domain
# tokens, case-insensitive roles, `not`, parentheses, generic checks on
# credentials and literals (a float among them), the `default` rule behind
# an undefined reference, and a target key the GET /usages target does not
# have.
FILES = {
    'overrides': '\n'.join([
        '"placement:traits:list": "role:reader"',
        '"placement:usages": "project_id:%(project_id)s"',
        '"placement:resource_providers:list": "@"',
        '"placement:allocations:list": "!"',
        '"placement:resource_classes:create": "rule:admin_api or role:member"',
        '',
    ]),
    'edges': '\n'.join([
        '"rule:admin_api": "role:member"',
        '"admin_or_service_api": "role:service or (role:READER and not'
        ' role:member)"',
        '"project_reader_api": "system_scope:all or domain_id:%s"' % DOMAIN,
        '"default": "role:reader"',
        '"placement:traits:show": "rule:no_such_rule"',
        '"placement:traits:update": "is_admin_project:True and role:member"',
        '"placement:traits:delete": "\'member\':%(user_id)s or'
        ' user_id:%(user_id)s"',
        '"placement:resource_providers:show": "project_domain_id:None"',
        '"placement:resource_providers:update": "not project_id:%(project_id)s'
        ' and role:admin"',
        '"placement:usages": "domain_id:%(user_id)s"',
        '"placement:resource_classes:show": "0.5:0.5 and role:reader"',
        '"placement:reshaper:reshape": "rule:admin_api and'
        ' rule:admin_or_service_api or role:service"',
        '',
    ]),
}


def make_conf(enforce_new_defaults, policy_path):
    """A fresh ConfigOpts as placement's deploy gets it, reading nothing
    from the machine (no config files, no environment)."""
    conf = cfg.ConfigOpts()
    placement_conf.register_opts(conf)
    # Required by placement's options, never opened here.
    conf.set_override('connection', 'sqlite://', group='placement_database')
    conf([], project='placement', default_config_files=[],
         default_config_dirs=[], use_env=False)
    # An absolute path; a missing file means defaults only, as upstream.
    conf.set_override('policy_file', policy_path, group='oslo_policy')
    # No policy.d lookup, so nothing on this machine can add rules.
    conf.set_override('policy_dirs', [], group='oslo_policy')
    conf.set_override('enforce_new_defaults', enforce_new_defaults,
                      group='oslo_policy')
    return conf


def build_enforcer(conf):
    """Upstream's enforcer for `conf`, through placement.policy.init."""
    placement_policy.reset()
    placement_policy.init(conf)
    enforcer = placement_policy._ENFORCER
    # init() registers the rules and loads the file once.
    assert enforcer is not None
    return enforcer


def targets(rule, ctx):
    """(kind, target) pairs to evaluate `rule` on.

    `handler` is what upstream's handler passes: the default target of
    RequestContext.can, except GET /usages, which passes only the queried
    project. `queried` is that project-only target for every rule, to
    exercise check strings on a foreign project and an absent user_id.
    """
    default = {'project_id': ctx.project_id, 'user_id': ctx.user_id}
    queried = {'project_id': TARGET_PROJECT}
    handler = queried if rule == policies.usage.TOTAL_USAGES else default
    return [('handler', handler), ('queried', queried)]


def upstream_decision(enforcer, ctx, rule, target):
    """Allowed or not, exactly as a placement handler would decide."""
    allowed = bool(ctx.can(rule, target=dict(target), fatal=False))
    # The same through oslo.policy's own entry point, as a cross-check that
    # nothing in placement's wrapper changes the answer.
    try:
        direct = bool(enforcer.authorize(rule, dict(target),
                                         ctx.to_policy_values(),
                                         do_raise=False))
    except oslo_policy.InvalidScope:
        direct = False
    if direct != allowed:
        raise AssertionError('ctx.can and Enforcer.authorize disagree on %s'
                             % rule)
    return allowed


def credentials_of(ctx):
    """The policy values oslo.policy sees, JSON-ready."""
    return dict(ctx.to_policy_values())


def main():
    rules = [rule.name for rule in policies.list_rules()]
    cases = []
    with tempfile.TemporaryDirectory(prefix='policy-matrix-') as tmp:
        files = [('none', os.path.join(tmp, 'absent.yaml'))]
        for name, text in FILES.items():
            path = os.path.join(tmp, name + '.yaml')
            with open(path, 'w') as f:
                f.write(text)
            files.append((name, path))
        for file_name, path in files:
            for defaults, new in (('secure', True), ('legacy', False)):
                enforcer = build_enforcer(make_conf(new, path))
                for rule in rules:
                    for role_name, roles in ROLES.items():
                        for scope, scope_args in SCOPES.items():
                            ctx = placement_context.RequestContext(
                                user_id=USER, roles=list(roles),
                                **scope_args)
                            for kind, target in targets(rule, ctx):
                                cases.append({
                                    'rule': rule,
                                    'roles': role_name,
                                    'scope': scope,
                                    'defaults': defaults,
                                    'file': file_name,
                                    'target_kind': kind,
                                    'credentials': credentials_of(ctx),
                                    'target': target,
                                    'allowed': upstream_decision(
                                        enforcer, ctx, rule, target),
                                })
        placement_policy.reset()
    # One write: json.dump's many small writes take seconds on a pipe.
    sys.stdout.write(json.dumps({'files': FILES, 'cases': cases}) + '\n')


if __name__ == '__main__':
    main()
