// The PouchDB peer of bench/run: the same workload and phases as bench/sync_bench.cc, with
// pouchdb 9.0.0 devices (leveldb on disk) replicating through express-pouchdb 4.2.0 (server.js,
// its own Node.js process on 127.0.0.1). See /work/shared/PEERS.md.
//
//   node bench.js --records 10000 [--batch_size 100] [--latency_runs 20] [--json]
//
// Phases, each timed alone: insert N docs on device A (one put() per doc, as an app saves
// records); replicate A -> server (push); server -> fresh device B (pull); modify 10 % on A;
// push that; pull it to B. Then the median of a replication with nothing to do and of one
// carrying one changed doc. Peak memory: VmHWM of the server process and of this process, reset
// before each phase.
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const PouchDB = require('pouchdb');
const { wellDoc } = require('./docs.js');

function parseArgs() {
  const args = { records: 10000, batch_size: 100, latency_runs: 20, json: false };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') args.json = true;
    else if (a === '--records') args.records = parseInt(argv[++i], 10);
    else if (a === '--batch_size') args.batch_size = parseInt(argv[++i], 10);
    else if (a === '--latency_runs') args.latency_runs = parseInt(argv[++i], 10);
    else {
      console.error('usage: node bench.js [--records N] [--batch_size N] [--latency_runs N] [--json]');
      process.exit(2);
    }
  }
  return args;
}

function peakKib(pid) {
  try {
    const m = /VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? parseInt(m[1], 10) : -1;
  } catch (e) {
    return -1;
  }
}
function resetPeak(pid) {
  try {
    fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch (e) {
    // older kernels: the peak then covers the whole run
  }
}
function cpuSeconds(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (parseInt(f[11], 10) + parseInt(f[12], 10)) / 100;
  } catch (e) {
    return -1;
  }
}
function median(values) {
  const v = [...values].sort((a, b) => a - b);
  if (v.length === 0) return 0;
  const mid = (v.length - 1) / 2;
  return (v[Math.floor(mid)] + v[Math.ceil(mid)]) / 2;
}

function startServer(dir) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(__dirname, 'server.js'), dir], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve({ child, port: JSON.parse(out.slice(0, nl)).port });
    });
    child.on('exit', (code) => reject(new Error(`server.js exited with ${code}`)));
  });
}

async function main() {
  const args = parseArgs();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fieldsync-pouchdb-'));
  const serverDir = path.join(dir, 'server');
  fs.mkdirSync(serverDir);
  const { child, port } = await startServer(serverDir);
  const phases = [];
  let t0 = 0;
  let cpu0 = 0;
  let own0 = null;
  const begin = () => {
    resetPeak(child.pid);
    resetPeak(process.pid);
    cpu0 = cpuSeconds(child.pid);
    own0 = process.cpuUsage();
    t0 = process.hrtime.bigint();
  };
  const end = (name, records) => {
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    phases.push({
      name,
      records,
      seconds,
      records_per_s: records / seconds,
      server_peak_kib: peakKib(child.pid),
      client_peak_kib: peakKib(process.pid),
      server_cpu_s: cpuSeconds(child.pid) - cpu0,
      client_cpu_s: (() => {
        const u = process.cpuUsage(own0);
        return (u.user + u.system) / 1e6;
      })(),
    });
  };
  try {
    const remote = `http://127.0.0.1:${port}/fieldsync`;
    const server = new PouchDB(remote);
    await server.info(); // creates the database
    const A = new PouchDB(path.join(dir, 'device-a'));
    const B = new PouchDB(path.join(dir, 'device-b'));
    const opts = { batch_size: args.batch_size };
    const n = args.records;
    const project = '01936c4e-6a4f-7d2e-9c1b-3f5a7e9b2c4d';

    begin();
    const ids = [];
    let jsonBytes = 0;
    for (let i = 0; i < n; i++) {
      const doc = wellDoc(project, i);
      jsonBytes += JSON.stringify(doc).length;
      const r = await A.put(doc);
      ids.push(r.id);
    }
    end('local insert on device A', n);

    begin();
    let r = await A.replicate.to(remote, opts);
    if (r.docs_written !== n) throw new Error(`push wrote ${r.docs_written} of ${n}`);
    end('push', n);

    begin();
    r = await B.replicate.from(remote, opts);
    if (r.docs_written !== n) throw new Error(`pull wrote ${r.docs_written} of ${n}`);
    end('pull to fresh device B', n);

    begin();
    let edits = 0;
    for (let i = 0; i < n; i += 10) {
      const doc = await A.get(ids[i]);
      doc.served += 1;
      await A.put(doc);
      edits++;
    }
    end('local update of 10 % on A', edits);

    begin();
    r = await A.replicate.to(remote, opts);
    if (r.docs_written !== edits) throw new Error(`edit push wrote ${r.docs_written} of ${edits}`);
    end('push 10 % edit', edits);

    begin();
    r = await B.replicate.from(remote, opts);
    if (r.docs_written !== edits) throw new Error(`edit pull wrote ${r.docs_written} of ${edits}`);
    end('pull 10 % edit to B', edits);

    // Latency: a round with nothing to do (push and pull, as a device syncs), and one that
    // carries one changed doc.
    const empty = [];
    const one = [];
    for (let i = 0; i < args.latency_runs; i++) {
      let t = process.hrtime.bigint();
      await B.replicate.to(remote, opts);
      await B.replicate.from(remote, opts);
      empty.push(Number(process.hrtime.bigint() - t) / 1e6);
      const doc = await A.get(ids[(i * 7919) % n]);
      doc.served += 1;
      await A.put(doc);
      t = process.hrtime.bigint();
      await A.replicate.to(remote, opts);
      await A.replicate.from(remote, opts);
      one.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    const result = {
      records: n,
      batch_size: args.batch_size,
      doc_json_bytes: jsonBytes / n,
      empty_sync_ms: median(empty),
      one_change_sync_ms: median(one),
      phases,
    };
    console.log(`PouchDB 9.0.0 peer: ${n} docs (${result.doc_json_bytes.toFixed(0)} bytes of ` +
      `JSON each), batch_size ${args.batch_size}`);
    for (const p of phases) {
      console.log(`  ${p.name.padEnd(32)} ${Math.round(p.records_per_s).toString().padStart(8)} ` +
        `docs/s ${p.seconds.toFixed(2).padStart(8)} s  CPU/doc server ` +
        `${(p.server_cpu_s * 1e6 / p.records).toFixed(0)} us client ` +
        `${(p.client_cpu_s * 1e6 / p.records).toFixed(0)} us  server ${(p.server_peak_kib / 1024).toFixed(0)} MB` +
        `  client ${(p.client_peak_kib / 1024).toFixed(0)} MB`);
    }
    console.log(`  sync with nothing to do: median ${result.empty_sync_ms.toFixed(1)} ms; ` +
      `with one changed doc: ${result.one_change_sync_ms.toFixed(1)} ms`);
    if (args.json) console.log('RESULT ' + JSON.stringify(result));
    await A.close();
    await B.close();
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.on('exit', resolve));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error('pouchdb bench:', e);
  process.exit(1);
});
