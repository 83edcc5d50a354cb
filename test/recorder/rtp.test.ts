import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRtp, buildRtp, type RtpRejectReason } from '../../src/recorder/rtp.js';

function header(b0: number, b1: number, extra: number[] = []): Buffer {
  return Buffer.from([b0, b1, 0x12, 0x34, 0, 0, 0x03, 0xe8, 0xde, 0xad, 0xbe, 0xef, ...extra]);
}

test('plain packet: fields and a payload view without copy', () => {
  const pkt = buildRtp({ payloadType: 111, sequenceNumber: 65535, timestamp: 0xfffffff0, ssrc: 0xdeadbeef, marker: true }, Buffer.from([0xf8, 1, 2, 3]));
  const p = parseRtp(pkt);
  assert.ok(p.ok);
  assert.equal(p.payloadType, 111);
  assert.equal(p.marker, true);
  assert.equal(p.sequenceNumber, 65535);
  assert.equal(p.timestamp, 0xfffffff0);
  assert.equal(p.ssrc, 0xdeadbeef);
  assert.deepEqual([...p.payload], [0xf8, 1, 2, 3]);
  assert.equal(p.payload.buffer, pkt.buffer, 'payload shares memory with the datagram');
  pkt[12] = 0x99;
  assert.equal(p.payload[0], 0x99);
});

test('CSRCs, a one-byte-header extension and padding are skipped', () => {
  // CC=2, X=1, P=1
  const csrcs = [0, 0, 0, 1, 0, 0, 0, 2];
  const ext = [0xbe, 0xde, 0x00, 0x01, 0x10, 0xff, 0x00, 0x00];
  const payload = [0xf8, 0xaa, 0xbb];
  const padding = [0, 0, 3];
  const p = parseRtp(header(0x80 | 0x20 | 0x10 | 2, 111, [...csrcs, ...ext, ...payload, ...padding]));
  assert.ok(p.ok);
  assert.equal(p.csrcCount, 2);
  assert.equal(p.extensionProfile, 0xbede);
  assert.equal(p.paddingBytes, 3);
  assert.deepEqual([...p.payload], payload);
});

test('empty payload after a header is valid RTP (the intake rejects it as Opus)', () => {
  const p = parseRtp(header(0x80, 111));
  assert.ok(p.ok);
  assert.equal(p.payload.length, 0);
});

test('junk is rejected with a reason and never throws', () => {
  const cases: Array<[string, Buffer, RtpRejectReason]> = [
    ['empty', Buffer.alloc(0), 'too-short'],
    ['one byte', Buffer.from([0x80]), 'too-short'],
    ['11 bytes', header(0x80, 111).subarray(0, 11), 'too-short'],
    ['version 0 (STUN binding request)', Buffer.from('000100002112a442000000000000000000000000', 'hex'), 'bad-version'],
    ['version 1', header(0x40, 111), 'bad-version'],
    ['version 3 (0xff junk)', Buffer.alloc(40, 0xff), 'bad-version'],
    ['DTLS record', Buffer.from([22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), 'bad-version'],
    ['RTCP sender report', header(0x80, 200), 'rtcp'],
    ['RTCP receiver report', header(0x81, 201, [0, 0, 0, 0]), 'rtcp'],
    ['RTCP BYE', header(0x81, 203), 'rtcp'],
    ['RTCP PSFB', header(0x81, 206), 'rtcp'],
    ['reserved PT 64', header(0x80, 64), 'reserved-payload-type'],
    ['CSRC count beyond the packet', header(0x8f, 111, [0, 0, 0, 1]), 'csrc-overrun'],
    ['extension header cut short', header(0x90, 111, [0xbe, 0xde]), 'extension-overrun'],
    ['extension length beyond the packet', header(0x90, 111, [0xbe, 0xde, 0x00, 0x10, 1, 2, 3, 4]), 'extension-overrun'],
    ['padding count zero', header(0xa0, 111, [1, 2, 0]), 'bad-padding'],
    ['padding longer than the payload', header(0xa0, 111, [1, 2, 9]), 'bad-padding'],
  ];
  for (const [name, buf, reason] of cases) {
    const p = parseRtp(buf);
    assert.equal(p.ok, false, name);
    if (!p.ok) assert.equal(p.reason, reason, name);
  }
  // Random bytes: never throws.
  for (let i = 0; i < 5000; i++) {
    const b = Buffer.alloc(Math.floor(Math.random() * 64));
    for (let k = 0; k < b.length; k++) b[k] = Math.floor(Math.random() * 256);
    if (b.length > 0 && Math.random() < 0.5) b[0] = 0x80 | ((b[0] as number) & 0x3f);
    const p = parseRtp(b);
    if (p.ok) assert.ok(p.payload.length <= b.length - 12);
  }
});
