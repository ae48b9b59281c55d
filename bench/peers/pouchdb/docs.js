// The benchmark's field record as a PouchDB document: the same water point values as
// bench/bench_util.cc WellRecord(project_id, i), as JSON (about 300-400 bytes).
'use strict';

function pad(n, width) {
  return String(n).padStart(width, '0');
}

// A UUIDv7-shaped id (time-ordered, like fieldsync's), so ids cost the same bytes on both sides.
let last = 0;
let counter = 0;
function uuidV7() {
  let now = Date.now();
  if (now <= last) {
    counter += 1;
  } else {
    last = now;
    counter = 0;
  }
  const t = now.toString(16).padStart(12, '0');
  const c = (counter & 0xfff).toString(16).padStart(3, '0');
  const r = () => Math.floor(Math.random() * 0x10000).toString(16).padStart(4, '0');
  return `${t.slice(0, 8)}-${t.slice(8, 12)}-7${c}-${(0x8000 | (Math.random() * 0x3fff)).toString(16)}-${r()}${r()}${r()}`;
}

// The shape of PEERS.md's document ({_id, type, project_id, site, depth_m, yield_lph, status,
// recorded_at, recorded_by, notes}, about 307 bytes): the water point's values with short keys.
function wellDoc(projectId, i) {
  return {
    _id: uuidV7(),
    type: 'well',
    project_id: projectId,
    depth_m: 40 + (i % 80) + 0.5,
    yield_lph: 600 + ((i * 37) % 3000),
    status: i % 7 ? 'FUNCTIONAL' : 'PARTLY_FUNCTIONAL',
    served: 150 + ((i * 13) % 2000),
    recorded_at: `2026-0${1 + (i % 9)}-2${i % 9}`,
    ecoli: i % 11 ? 0 : 3,
    notes: `Apron intact; caretaker committee of ${3 + (i % 5)} trained. Fence repaired after ` +
      'the long rains, spare parts stored at the school.',
  };
}

module.exports = { wellDoc, uuidV7, pad };
