#!/usr/bin/python3
# Creates what CAPO's suites expect: the demo project and user with the roles
# DevStack gives them, flavors,
# quotas, the volume type, a tiny image, the external network "public" and the
# controller's availability zone aggregate. Idempotent.
# Environment: OS_AUTH_URL, OS_PASSWORD, CONTROLLER_HOST, FAILURE_DOMAIN,
# VOLUME_TYPE, FLOATING_CIDR, FLOATING_GATEWAY, DISCOVERY_TIMEOUT.
import os
import sys
import time
import openstack

env = os.environ
c = openstack.connect(auth_url=env['OS_AUTH_URL'], username='admin', password=env['OS_PASSWORD'],
                      project_name='admin', user_domain_name='Default', project_domain_name='Default',
                      region_name='RegionOne')
idn = c.identity
demo = idn.find_project('demo') or idn.create_project(name='demo', domain_id='default')
user = idn.find_user('demo') or idn.create_user(name='demo', password=env['OS_PASSWORD'], domain_id='default',
                                               default_project_id=demo.id)
admin = idn.find_user('admin')
admin_project = idn.find_project('admin')
# The roles DevStack creates (lib/keystone, octavia's plugin) and what it
# grants the demo user in the demo project: octavia's default policy lets
# only load-balancer_* roles use its API.
for role_name in ('ResellerAdmin', 'anotherrole', 'load-balancer_observer', 'load-balancer_global_observer',
                  'load-balancer_member', 'load-balancer_admin', 'load-balancer_quota_admin'):
    idn.find_role(role_name) or idn.create_role(name=role_name)
for role_name in ('member', 'reader', 'anotherrole', 'load-balancer_member'):
    idn.assign_project_role_to_user(demo, user, idn.find_role(role_name))
idn.assign_project_role_to_user(demo, admin, idn.find_role('admin'))

flavors = [('m1.tiny', 512, 1, 1), ('m1.tiny.alt', 512, 1, 1), ('m1.small', 4192, 2, 20), ('m1.medium', 6144, 2, 20)]
for name, ram, vcpus, disk in flavors:
    if not c.compute.find_flavor(name):
        c.compute.create_flavor(name=name, ram=ram, vcpus=vcpus, disk=disk, is_public=True)

for project in (demo, admin_project):
    c.set_compute_quotas(project.id, instances=1000, cores=10000, ram=10240000, key_pairs=1000,
                         server_groups=1000, server_group_members=1000)
    c.set_network_quotas(project.id, network=1000, subnet=1000, port=10000, router=1000, floatingip=1000,
                         security_group=1000, security_group_rule=10000, trunk=1000)
    c.set_volume_quotas(project.id, volumes=1000, gigabytes=100000, snapshots=1000, backups=1000)

vt = env['VOLUME_TYPE']
if not c.block_storage.find_type(vt):
    c.block_storage.create_type(name=vt, is_public=True)

if not c.image.find_image('stackgate-tiny'):
    c.image.create_image(name='stackgate-tiny', data=b'\0' * 1048576, disk_format='raw',
                         container_format='bare', visibility='public')

pub = c.network.find_network('public') or c.network.create_network(
    name='public', is_router_external=True, is_shared=False,
    provider_network_type='flat', provider_physical_network='public')
if not c.network.find_subnet('public-subnet'):
    c.network.create_subnet(name='public-subnet', network_id=pub.id, ip_version=4, cidr=env['FLOATING_CIDR'],
                            gateway_ip=env['FLOATING_GATEWAY'], is_dhcp_enabled=False)

host, az = env['CONTROLLER_HOST'], env['FAILURE_DOMAIN']
deadline = time.time() + float(env.get('DISCOVERY_TIMEOUT', '180'))
seen = []
while host not in seen:
    seen = [h.name for h in c.compute.hypervisors()]
    if host in seen:
        break
    if time.time() > deadline:
        sys.exit(f'gave up waiting for nova to discover compute host {host}; hypervisors seen: {seen}')
    time.sleep(0.5)
while host not in [p.name for p in c.placement.resource_providers()]:
    # nova mirrors aggregate membership into placement only for an existing resource provider
    if time.time() > deadline:
        sys.exit(f'gave up waiting for the placement resource provider of {host}')
    time.sleep(0.5)
agg = c.compute.find_aggregate(az) or c.compute.create_aggregate(name=az, availability_zone=az)
if host not in (c.compute.get_aggregate(agg.id).hosts or []):
    c.compute.add_host_to_aggregate(agg, host)
print(f'seeded: demo project and roles, flavors, quotas, volume type {vt}, image stackgate-tiny, network public, {host} in {az}')
