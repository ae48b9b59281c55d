// The PouchDB peer's server: express-pouchdb 4.2.0 mounted on express 4.22.3 over PouchDB 9.0.0
// with on-disk leveldb, on 127.0.0.1 and a port the kernel picks (see /work/shared/PEERS.md).
//
//   node server.js DIR      # prints {"port": N} on stdout once listening
'use strict';
const path = require('path');
const express = require('express');
const PouchDB = require('pouchdb');

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node server.js DIR');
  process.exit(2);
}
const ServerDB = PouchDB.defaults({ prefix: dir + path.sep });
const app = express();
app.use('/', require('express-pouchdb')(ServerDB, {
  mode: 'minimumForPouchDB',
  inMemoryConfig: true,
  logPath: path.join(dir, 'log.txt'),
}));
const server = app.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n');
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
