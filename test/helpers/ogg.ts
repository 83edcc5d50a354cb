/** A small Ogg reader for tests: pages and the packets they carry (RFC 3533). */
export interface OggPage {
  headerType: number;
  granule: bigint;
  serial: number;
  sequence: number;
  packets: Buffer[];
}

export function readOggPages(data: Buffer): OggPage[] {
  const pages: OggPage[] = [];
  let off = 0;
  let partial: Buffer[] = [];
  while (off < data.length) {
    if (data.toString('latin1', off, off + 4) !== 'OggS') throw new Error(`no Ogg capture pattern at byte ${off}`);
    const headerType = data[off + 5]!;
    const granule = data.readBigInt64LE(off + 6);
    const serial = data.readUInt32LE(off + 14);
    const sequence = data.readUInt32LE(off + 18);
    const nsegs = data[off + 26]!;
    const lacing = data.subarray(off + 27, off + 27 + nsegs);
    let body = off + 27 + nsegs;
    const packets: Buffer[] = [];
    for (const len of lacing) {
      partial.push(data.subarray(body, body + len));
      body += len;
      if (len < 255) {
        packets.push(Buffer.concat(partial));
        partial = [];
      }
    }
    pages.push({ headerType, granule, serial, sequence, packets });
    off = body;
  }
  return pages;
}

/** The Opus audio packets of an Ogg Opus file (after OpusHead and OpusTags). */
export function opusPackets(data: Buffer): Buffer[] {
  const all = readOggPages(data).flatMap((p) => p.packets);
  if (all[0]?.toString('latin1', 0, 8) !== 'OpusHead') throw new Error('first packet is not OpusHead');
  if (all[1]?.toString('latin1', 0, 8) !== 'OpusTags') throw new Error('second packet is not OpusTags');
  return all.slice(2);
}
