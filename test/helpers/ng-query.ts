import { isDict, type NgDict } from '../../src/media/index.js';

/**
 * The peer rtpengine sends a monologue's first stream to, from an ng `query` reply: for the recorder's
 * subscription (`<call>-r`) the recorder's socket, for a call leg the address it is bound to now.
 */
export function legEndpoint(query: NgDict, tag: string): { address: string; port: number } {
  const tags = query.tags;
  const leg = isDict(tags) ? tags[tag] : undefined;
  const medias = isDict(leg) && Array.isArray(leg.medias) ? leg.medias : [];
  const media = medias[0];
  const streams = isDict(media) && Array.isArray(media.streams) ? media.streams : [];
  const stream = streams[0];
  const endpoint = isDict(stream) ? stream.endpoint : undefined;
  if (!isDict(endpoint) || typeof endpoint.address !== 'string' || typeof endpoint.port !== 'number') {
    throw new Error(`no endpoint for ${tag} in ng query: ${JSON.stringify(query).slice(0, 2000)}`);
  }
  return { address: endpoint.address, port: endpoint.port };
}
