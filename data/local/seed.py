#!/usr/bin/python3
# Creates what CAPO's suites expect: the demo project and user with the roles
# DevStack gives them, flavors, quotas, the volume type, a tiny image, the
# external network "public", the controller's availability zone aggregate,
# and what octavia's amphorae need (as DevStack's octavia plugin makes it).
# Idempotent.
# Environment: OS_AUTH_URL, OS_PASSWORD, CONTROLLER_HOST, FAILURE_DOMAIN,
# VOLUME_TYPE, FLOATING_CIDR, FLOATING_GATEWAY, DISCOVERY_TIMEOUT,
# OCTAVIA_AMPHORA_CONF (the octavia configuration file it writes), and with
# real VMs GUEST_KERNEL, GUEST_RAMDISK, GUEST_CMDLINE, GUEST_ID (the guest
# image's files, kernel command line and content id).
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

# The flavors of CAPO's CI DevStack (hack/ci/cloud-init/controller.yaml.tpl):
# an ephemeral disk in each, which CAPO's Local block devices (the multi-az
# flavor's etcd disk) need, and hw_rng allowed.
flavors = [('1', 'm1.tiny', 512, 1, 1, 1), ('10', 'm1.tiny.alt', 512, 1, 1, 1),
           ('2', 'm1.small', 4192, 2, 20, 5), ('3', 'm1.medium', 6144, 2, 20, 5)]
for fid, name, ram, vcpus, disk, ephemeral in flavors:
    f = c.compute.find_flavor(name)
    if not f:
        f = c.compute.create_flavor(id=fid, name=name, ram=ram, vcpus=vcpus, disk=disk, ephemeral=ephemeral, is_public=True)
    c.compute.create_flavor_extra_specs(f, {'hw_rng:allowed': 'True'})

service_project = idn.find_project('service')
for project in (demo, admin_project, service_project):
    c.set_compute_quotas(project.id, instances=1000, cores=10000, ram=10240000, key_pairs=1000,
                         server_groups=1000, server_group_members=1000)
    c.set_network_quotas(project.id, network=1000, subnet=1000, port=10000, router=1000, floatingip=1000,
                         security_group=1000, security_group_rule=10000, trunk=1000)
    c.set_volume_quotas(project.id, volumes=1000, gigabytes=100000, snapshots=1000, backups=1000)

vt = env['VOLUME_TYPE']
if not c.block_storage.find_type(vt):
    c.block_storage.create_type(name=vt, is_public=True)

# stackgate-tiny: with real VMs the guest image, booted as DevStack boots its
# cirros "uec" images: a kernel (aki) and ramdisk (ari) that the disk image's
# kernel_id and ramdisk_id name, the disk itself 1 MiB of zeros; without, the
# disk alone.
if not c.image.find_image('stackgate-tiny'):
    props = {}
    if env.get('GUEST_KERNEL'):
        with open(env['GUEST_KERNEL'], 'rb') as f:
            kernel = c.image.create_image(name='stackgate-tiny-kernel', data=f.read(), disk_format='aki',
                                          container_format='aki', visibility='public')
        with open(env['GUEST_RAMDISK'], 'rb') as f:
            ramdisk = c.image.create_image(name='stackgate-tiny-ramdisk', data=f.read(), disk_format='ari',
                                           container_format='ari', visibility='public')
        props = {'kernel_id': kernel.id, 'ramdisk_id': ramdisk.id, 'os_command_line': env['GUEST_CMDLINE'],
                 'stackgate_guest': env['GUEST_ID']}
    c.image.create_image(name='stackgate-tiny', data=b'\0' * 1048576, disk_format='raw',
                         container_format='bare', visibility='public', **props)

pub = c.network.find_network('public') or c.network.create_network(
    name='public', is_router_external=True, is_shared=False,
    provider_network_type='flat', provider_physical_network='public')
if not c.network.find_subnet('public-subnet'):
    c.network.create_subnet(name='public-subnet', network_id=pub.id, ip_version=4, cidr=env['FLOATING_CIDR'],
                            gateway_ip=env['FLOATING_GATEWAY'], is_dhcp_enabled=False)

# Octavia's amphorae: servers of the service project booted from the image
# tagged "amphora" with the private flavor m1.amphora, on the management
# network lb-mgmt-net (no DHCP: nothing boots on it), in the security group
# lb-mgmt-sec-grp. Creating that group also creates the service project's
# default group, as listing the demo project's groups creates its own: neither
# appears later as something a load balancer made.
amp_flavor = c.compute.find_flavor('m1.amphora', ignore_missing=True) or c.compute.create_flavor(
    name='m1.amphora', ram=512, vcpus=1, disk=1, is_public=False)
if not list(c.image.images(tag='amphora', owner=service_project.id)):
    c.image.create_image(name='amphora-x64-haproxy', data=b'\0' * 1048576, disk_format='raw',
                         container_format='bare', visibility='private', owner=service_project.id,
                         tags=['amphora'])
mgmt = c.network.find_network('lb-mgmt-net', project_id=service_project.id) or c.network.create_network(
    name='lb-mgmt-net', project_id=service_project.id)
if not c.network.find_subnet('lb-mgmt-subnet', network_id=mgmt.id):
    c.network.create_subnet(name='lb-mgmt-subnet', network_id=mgmt.id, project_id=service_project.id,
                            ip_version=4, cidr='192.168.0.0/24', is_dhcp_enabled=False,
                            allocation_pools=[{'start': '192.168.0.2', 'end': '192.168.0.200'}])
mgmt_sg = c.network.find_security_group('lb-mgmt-sec-grp', project_id=service_project.id) or \
    c.network.create_security_group(name='lb-mgmt-sec-grp', project_id=service_project.id)
list(c.network.security_groups(project_id=demo.id))
amp_conf = env['OCTAVIA_AMPHORA_CONF']
text = (f'[controller_worker]\namp_boot_network_list = {mgmt.id}\namp_secgroup_list = {mgmt_sg.id}\n'
        f'amp_flavor_id = {amp_flavor.id}\n')
os.makedirs(os.path.dirname(amp_conf), exist_ok=True)
with open(os.open(amp_conf + '.new', os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 'w') as f:
    f.write(text)
os.replace(amp_conf + '.new', amp_conf)

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
print(f'seeded: demo project and roles, flavors, quotas, volume type {vt}, image stackgate-tiny, network public, amphorae on lb-mgmt-net, {host} in {az}')
