/** Media layer: rtpengine control (ng), a supervised local rtpengine, and the MediaRelay over it. */
export { createNgClient, isDict, type NgClient, type NgClientOptions, type NgCommand, type NgDict, type NgValue, type NgSdpReply, type NgOutcome, type NgObserverEvents } from './ng-client.js';
export { createRtpengineProcess, rtpengineArgs, type RtpengineProcess, type RtpengineProcessOptions, type RtpengineProcessEvents } from './rtpengine-process.js';
export { createRtpengineRelay, type RtpengineRelay, type RtpengineRelayOptions, type RtpengineSession, type MediaDirection, type TrunkCodec, type TrunkSrtp } from './relay.js';
export { validateSdp, addBundle, codecNames, type SdpSide } from './sdp.js';
export { createMediaWatch, legCounters, type MediaWatch, type MediaWatchOptions, type WatchedCall, type MediaLoss } from './liveness.js';
