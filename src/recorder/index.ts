/** The recorder module's public surface (DESIGN §3: RTP intake, Ogg muxing, VAD, chunking). */
export { createRecorder, readForkOffer, type ForkOffer, type ForkSource, type Recorder, type RecorderOptions, type RecorderSummary } from './recorder.js';
export { RecordingPipeline, type PauseBehavior, type PausedSpan, type RecordingChunk, type RecordingPipelineOptions, type RecordingSummary } from './pipeline.js';
export { RtpIntake, type IntakeStats, type RtpIntakeOptions } from './intake.js';
export { OggOpusMuxer, oggCrc32, type OggOpusMuxerOptions, type OggPageInfo } from './ogg-opus.js';
export { VoiceActivity, SILENCE_DBFS, type VoiceActivityOptions, type VoiceActivityResult } from './voice-activity.js';
export { parseRtp, buildRtp, type RtpPacket, type RtpReject, type RtpRejectReason } from './rtp.js';
export { opusPacketSamples, forEachSilentPacket } from './opus-packet.js';
