import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { dashboardMetricNames, repo, startMount, stopAll, tempDir, type MountProcess } from './harness.js';

const sh = (cmd: string, cwd: string) => execFileSync('bash', ['-c', cmd], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

describe('a local-mode mount, through real programs', () => {
  let m: MountProcess;
  before(async () => {
    m = await startMount();
  });
  after(stopAll);

  it('cp -a of a tree gives an identical tree (diff -r)', () => {
    const src = join(repo, 'packages', 'aether', 'src');
    sh(`cp -a ${src} ${m.mnt}/copy`, m.mnt);
    const r = spawnSync('diff', ['-r', src, join(m.mnt, 'copy')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });

  it('tar x of a real npm package tarball reproduces every file', () => {
    const work = tempDir('aether-tgz-');
    const pkg = join(repo, 'node_modules', 'commander');
    sh(`tar czf ${work}/commander.tgz -C ${pkg} .`, work);
    sh(`mkdir -p ${m.mnt}/pkg && tar xzf ${work}/commander.tgz -C ${m.mnt}/pkg`, m.mnt);
    const r = spawnSync('diff', ['-r', pkg, join(m.mnt, 'pkg')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.equal(statSync(join(m.mnt, 'pkg', 'package.json')).mode & 0o777, statSync(join(pkg, 'package.json')).mode & 0o777);
  });

  it('git init, add, commit, status and log work inside the mount', () => {
    const dir = join(m.mnt, 'repo');
    const git = (args: string) => sh(`git -c user.email=t@example.com -c user.name=T -c init.defaultBranch=main ${args}`, dir);
    sh(`mkdir -p ${dir} && cp -a ${join(repo, 'packages', 'aether', 'src', 'config')} ${dir}/config`, m.mnt);
    git('init -q');
    git('add -A');
    git('commit -qm first');
    assert.equal(git('status --porcelain'), '');
    sh('echo change >> config/model.ts', dir);
    assert.match(git('status --porcelain'), /^ M config\/model\.ts$/m);
    git('commit -qam second');
    assert.deepEqual(git('log --format=%s').trim().split('\n'), ['second', 'first']);
    assert.equal(git('fsck --no-progress 2>&1; echo rc=$?').trim().split('\n').pop(), 'rc=0');
  });

  it('df -PT shows the mount with its type', () => {
    const out = sh(`df -PT ${m.mnt}`, m.mnt);
    assert.match(out.split('\n')[1] ?? '', /^aether\s+fuse\.aether\s+\d+/);
  });

  it('the metrics endpoint serves the seed metric names', async () => {
    const status = JSON.parse(m.ctl(['status', '--json']).out) as { metrics_address: string };
    const res = await fetch(`http://${status.metrics_address}/metrics`);
    // Each scrape on its own connection: a reused one the server was closing failed a scrape.
    assert.equal(res.headers.get('connection'), 'close');
    const text = await res.text();
    for (const name of [
      'aether_journal_wal_flush_total',
      'aether_journal_sync_count_total',
      'aether_journal_pending_bytes',
      'aether_journal_pending_entries',
      'aether_journal_oldest_entry_age_seconds',
      'aether_cache_dirty_bytes',
      'aether_fuse_op_duration_seconds',
      'aether_backpressure_engaged',
    ]) assert.match(text, new RegExp(`^${name}`, 'm'), name);
    // The process's own figures under one prefix (not aether_process_process_*).
    assert.match(text, /^aether_process_cpu_user_seconds_total /m);
    assert.doesNotMatch(text, /aether_process_process_/);
    // Every series the shipped dashboard queries is served (a renamed metric would leave a panel empty).
    const { local } = dashboardMetricNames();
    assert.ok(local.length >= 12, local.join(' '));
    // A labelled counter nothing has counted yet shows only its HELP line.
    for (const name of local) assert.match(text, new RegExp(`^(# HELP )?${name}[{ ]`, 'm'), `dashboard queries ${name}`);
  });
});
