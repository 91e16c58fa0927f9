#!/usr/bin/python3
# Registers the worker once its services run: waits (bounded) for nova's cell
# discovery to find its compute host, puts it into the aggregate of its
# availability zone and waits for its cinder-volume service in that zone.
# Environment: OS_AUTH_URL, OS_PASSWORD, WORKER_HOST, FAILURE_DOMAIN_ALT, REGISTER_TIMEOUT.
import os
import sys
import time
import openstack

env = os.environ
t0 = time.time()
deadline = t0 + float(env.get('REGISTER_TIMEOUT', '300'))
host, az = env['WORKER_HOST'], env['FAILURE_DOMAIN_ALT']


def log(msg):
    print(f'{time.strftime("%H:%M:%S")} +{time.time() - t0:5.1f}s {msg}', flush=True)


def wait(what, check):
    last = None
    while True:
        try:
            ok, last = check()
            if ok:
                return
        except Exception as e:  # the API may still be restarting; retry until the deadline
            last = f'error: {e}'
        if time.time() > deadline:
            log(f'gave up waiting for {what}; last seen: {last}')
            sys.exit(1)
        time.sleep(0.5)


c = None


def connect():
    global c
    c = openstack.connect(auth_url=env['OS_AUTH_URL'], username='admin', password=env['OS_PASSWORD'],
                          project_name='admin', user_domain_name='Default', project_domain_name='Default',
                          region_name='RegionOne')
    c.authorize()
    return True, 'connected'


wait('keystone', connect)
log('connected')


def discovered():
    names = [h.name for h in c.compute.hypervisors()]
    return host in names, f'hypervisors {names}'


wait(f'nova to discover compute host {host}', discovered)
log(f'{host} discovered')


def provider():
    # nova mirrors aggregate membership into placement only for an existing
    # resource provider; adding the host earlier leaves it unschedulable.
    names = [p.name for p in c.placement.resource_providers()]
    return host in names, f'resource providers {names}'


wait(f'placement resource provider {host}', provider)
log(f'{host} resource provider present')


def aggregate():
    agg = c.compute.find_aggregate(az) or c.compute.create_aggregate(name=az, availability_zone=az)
    if host not in (c.compute.get_aggregate(agg.id).hosts or []):
        c.compute.add_host_to_aggregate(agg, host)
    return True, 'ok'


wait(f'aggregate {az} with host {host}', aggregate)
log(f'{host} in aggregate {az}')


def compute_up():
    svcs = [(s.host, s.state, s.availability_zone) for s in c.compute.services() if s.binary == 'nova-compute']
    return (host, 'up', az) in svcs, f'compute services {svcs}'


wait(f'nova-compute on {host} up in {az}', compute_up)
log(f'nova-compute on {host} up in {az}')


def volume_up():
    resp = c.block_storage.get('/os-services', params={'binary': 'cinder-volume'})
    svcs = [(s['host'], s['state'], s['zone']) for s in resp.json()['services']]
    return (f"{host}@{env['VOLUME_BACKEND']}", 'up', az) in svcs, f'volume services {svcs}'


wait(f'cinder-volume on {host} up in {az}', volume_up)
log(f'cinder-volume on {host} up in {az}')
log('worker registered')
