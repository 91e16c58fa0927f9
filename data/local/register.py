#!/usr/bin/python3
# Registers the service project, roles, service users and the catalog in
# keystone. Idempotent. Environment: OS_AUTH_URL, OS_PASSWORD, CONTROLLER_IP.
import os
from keystoneauth1.identity import v3
from keystoneauth1 import session
from keystoneclient.v3 import client

pw = os.environ['OS_PASSWORD']
auth = v3.Password(auth_url=os.environ['OS_AUTH_URL'], username='admin', password=pw,
                   project_name='admin', user_domain_name='Default', project_domain_name='Default')
ks = client.Client(session=session.Session(auth=auth))


def one(mgr, **kw):
    found = mgr.list(**kw)
    return found[0] if found else None


svcproj = one(ks.projects, name='service') or ks.projects.create('service', 'default')
admin_role = one(ks.roles, name='admin')
for r in ('member', 'reader', 'service'):
    one(ks.roles, name=r) or ks.roles.create(r)
service_role = one(ks.roles, name='service')
for u in ('nova', 'neutron', 'placement', 'glance', 'cinder', 'octavia'):
    user = one(ks.users, name=u) or ks.users.create(u, domain='default', password=pw)
    ks.roles.grant(admin_role, user=user, project=svcproj)
    ks.roles.grant(service_role, user=user, project=svcproj)
B = 'http://' + os.environ['CONTROLLER_IP']
eps = [('placement', 'placement', B + ':8778'),
       ('nova', 'compute', B + ':8774/v2.1'),
       ('neutron', 'network', B + ':9696'),
       ('glance', 'image', B + ':9292'),
       ('cinderv3', 'volumev3', B + ':8776/v3/%(project_id)s'),
       ('cinder', 'block-storage', B + ':8776/v3/%(project_id)s'),
       ('octavia', 'load-balancer', B + ':9876')]
for name, typ, url in eps:
    s = one(ks.services, type=typ) or ks.services.create(name, type=typ)
    for iface in ('public', 'internal', 'admin'):
        if not ks.endpoints.list(service=s, interface=iface):
            ks.endpoints.create(s, url, interface=iface, region='RegionOne')
print('registered service users and catalog')
