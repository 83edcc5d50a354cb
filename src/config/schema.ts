import { Type, type Static } from '@sinclair/typebox';

/** record: record as usual; announce: play the configured prompt to the counterpart, then record; skip: do not record (reason `policy`). */
const ConsentAction = Type.Union([Type.Literal('record'), Type.Literal('announce'), Type.Literal('skip')], { description: 'record, announce or skip' });

const Port = Type.Integer({ minimum: 1, maximum: 65535, description: 'a TCP/UDP port, 1-65535' });
const Address = Type.String({ minLength: 1, description: 'an IP address or host name' });
const Codec = Type.Union([Type.Literal('PCMU'), Type.Literal('PCMA'), Type.Literal('opus')], {
  description: 'one of PCMU, PCMA, opus',
});

/** One SIP trunk. `sip.trunk` has every key (config/default.json); entries of `sip.trunks` need only host, port, transport. */
const Trunk = Type.Object(
  {
    host: Address,
    port: Port,
    transport: Type.Union([Type.Literal('udp'), Type.Literal('tcp'), Type.Literal('tls')], { description: 'udp, tcp or tls' }),
    /** `sips`: secure URIs end to end (needs transport tls); `sip` with transport tls adds `;transport=tls` */
    scheme: Type.Optional(Type.Union([Type.Literal('sip'), Type.Literal('sips')], { description: 'sip or sips' })),
    username: Type.Optional(Type.String()),
    password: Type.Optional(Type.String()),
    domain: Type.Optional(Type.String()),
    /** the only sources whose requests we answer (others get nothing); the trunk host, if an IP, is always allowed */
    allowedSources: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'list of IP addresses and CIDR ranges (IPv4, IPv6)' })),
    /** how the trunk's TLS certificate is checked (transport tls) */
    tls: Type.Optional(
      Type.Object(
        {
          /** PEM CA bundle to trust instead of Node's built-in roots; empty: the built-in roots */
          caFile: Type.Optional(Type.String()),
          /** SNI and the name the certificate must carry; empty: the host when it is a name */
          servername: Type.Optional(Type.String()),
          /** false accepts any certificate: UNSAFE, anyone on the path can read and change calls */
          rejectUnauthorized: Type.Optional(Type.Boolean()),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

/** The whole configuration. `config/default.json` holds every key with its default. */
export const ConfigSchema = Type.Object(
  {
    dataDir: Type.String({ minLength: 1, description: 'folder for the SQLite file, keys and spool' }),
    /** names this node in shared state (recordings it owns); empty: the host name. Unique per node. */
    nodeId: Type.String({ maxLength: 64 }),
    log: Type.Object(
      { level: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l))) },
      { additionalProperties: false },
    ),
    http: Type.Object(
      {
        host: Address,
        port: Type.Integer({ minimum: 0, maximum: 65535, description: 'a port, 0 for any free one' }),
        /** URL printed for people; empty means http://host:port/ */
        publicUrl: Type.String(),
        bodyLimitBytes: Type.Integer({ minimum: 1024 }),
      },
      { additionalProperties: false },
    ),
    database: Type.Object(
      {
        /** empty: SQLite file `monologue.db` in dataDir; `postgres://…`: PostgreSQL */
        url: Type.String({ pattern: '^$|^postgres(ql)?://', description: 'empty or a postgres:// URL' }),
      },
      { additionalProperties: false },
    ),
    sip: Type.Object(
      {
        listenAddress: Address,
        port: Port,
        udp: Type.Boolean(),
        tcp: Type.Boolean(),
        publicAddress: Type.String(),
        inviteTimeoutMs: Type.Integer({ minimum: 1000 }),
        /** inbound TCP connections one source IP may hold open; more are closed at once */
        tcpMaxConnectionsPerSource: Type.Integer({ minimum: 1, description: 'an integer, at least 1' }),
        /** an inbound TCP connection without traffic or a transaction this long is closed */
        tcpIdleTimeoutMs: Type.Integer({ minimum: 1000, description: 'milliseconds, at least 1000' }),
        /** RFC 4028 session timers: the interval we ask for, and the smallest we accept (422 below it) */
        sessionTimers: Type.Object(
          {
            seconds: Type.Integer({ minimum: 90, maximum: 86400, description: 'seconds, 90-86400' }),
            /** RFC 4028 §4: never below 90 */
            minSeconds: Type.Integer({ minimum: 90, maximum: 86400, description: 'seconds, 90-86400' }),
          },
          { additionalProperties: false },
        ),
        /** the single trunk; ignored when `trunks` lists any */
        trunk: Trunk,
        /** several trunks in order of preference: outbound calls fail over down the list on 408, 5xx, no response, transport errors */
        trunks: Type.Array(Trunk),
        /** an INVITE without any response (not even 100 Trying) this long moves to the next trunk */
        trunkAttemptTimeoutMs: Type.Integer({ minimum: 200, description: 'milliseconds, at least 200' }),
        /** a TLS listener for the trunk's requests (port 0: none) */
        tls: Type.Object(
          {
            port: Type.Integer({ minimum: 0, maximum: 65535, description: 'a port, 0 for no TLS listener' }),
            certFile: Type.String(),
            keyFile: Type.String(),
          },
          { additionalProperties: false },
        ),
      },
      { additionalProperties: false },
    ),
    media: Type.Object(
      {
        trunkCodecs: Type.Array(Codec, { minItems: 1 }),
        /** SRTP towards the trunk: `sdes` requires RTP/SAVP with SDES keys both ways, `sdes-optional` offers it and accepts plain RTP */
        trunkSrtp: Type.Union([Type.Literal('off'), Type.Literal('sdes'), Type.Literal('sdes-optional')], { description: 'off, sdes or sdes-optional' }),
        ngTimeoutMs: Type.Integer({ minimum: 100 }),
        timeoutSeconds: Type.Integer({
          minimum: 1,
          maximum: 86400,
          description: 'an answered call whose dialer or trunk leg sends no RTP for this many seconds ends media-timeout, 1-86400',
        }),
        unreachableSeconds: Type.Integer({
          minimum: 1,
          maximum: 3600,
          description: 'rtpengine answering no control request for this many seconds ends its live calls media-failed, 1-3600',
        }),
        rtpengine: Type.Object(
          {
            spawn: Type.Boolean({ description: 'true: start and supervise a local rtpengine' }),
            binary: Type.String({ minLength: 1 }),
            /** keep the ng port private: it has no authentication (README, production notes) */
            ngAddress: Address,
            ngPort: Port,
            interface: Address,
            recorderInterface: Type.String({
              minLength: 1,
              description: "address rtpengine sends the recorder fork from (its 'recorder' interface): loopback or a private address, never the public media address",
            }),
            portMin: Port,
            portMax: Port,
          },
          { additionalProperties: false },
        ),
      },
      { additionalProperties: false },
    ),
    calls: Type.Object(
      {
        ringTimeoutMs: Type.Integer({ minimum: 1000 }),
        maxCallsPerUser: Type.Integer({ minimum: 1, description: 'live calls one user may have at once, at least 1' }),
        drainMs: Type.Integer({ minimum: 0 }),
        /** the paid-dialing policy (DESIGN §4.9): refusals answer call.start and never reach the trunk */
        allowedCountryCodes: Type.Array(Type.String({ pattern: '^[1-9][0-9]{0,2}$' }), {
          description: 'E.164 country codes that may be dialled, digits without "+", e.g. ["1"]',
        }),
        deniedPrefixes: Type.Array(Type.String({ pattern: '^\\+[1-9][0-9]{0,14}$' }), {
          description: 'E.164 prefixes that are never dialled, with "+", e.g. ["+1900"]',
        }),
        maxCallSeconds: Type.Integer({ minimum: 1, maximum: 86400, description: 'whole seconds an answered call may last before it ends max-duration, 1-86400' }),
        dailyMaxCallAttempts: Type.Integer({ minimum: 0, description: 'outbound call attempts per user per UTC day, 0 or more' }),
        dailyMaxMinutes: Type.Integer({ minimum: 0, description: 'answered outbound minutes per user per UTC day, 0 or more' }),
      },
      { additionalProperties: false },
    ),
    signaling: Type.Object(
      {
        maxMessageBytes: Type.Integer({ minimum: 1024 }),
        authTimeoutMs: Type.Integer({ minimum: 100 }),
        maxMessagesPerSecond: Type.Integer({ minimum: 1 }),
        maxSocketsPerUser: Type.Integer({ minimum: 1, description: 'authenticated sockets one user may hold on this node, at least 1' }),
        maxSocketsPerIp: Type.Integer({ minimum: 1, description: 'sockets (authenticated or not) from one source address, at least 1' }),
        maxUnauthenticatedSocketsPerIp: Type.Integer({ minimum: 1, description: 'sockets not yet authenticated from one source address, at least 1' }),
      },
      { additionalProperties: false },
    ),
    accounts: Type.Object(
      {
        tokenTtlHours: Type.Integer({ minimum: 1 }),
        /** how often the live sockets' tokens are checked against the database (revocations by other processes) */
        tokenCheckIntervalMs: Type.Integer({ minimum: 50, maximum: 60000, description: 'milliseconds, 50-60000' }),
      },
      { additionalProperties: false },
    ),
    recording: Type.Object(
      {
        /** false: never fork or record, whatever users consented to */
        enabled: Type.Boolean(),
        chunkSeconds: Type.Integer({ minimum: 1, maximum: 60, description: 'whole seconds, 1-60' }),
        /** where recorder sockets bind; rtpengine must reach it */
        recorderAddress: Address,
        /** key-encryption keys; empty: dataDir/keys/kek */
        kekDir: Type.String(),
        /** recordings older than this many days are crypto-shredded by the retention sweeper; 0 keeps them */
        retentionDays: Type.Integer({ minimum: 0, description: 'whole days, 0 = keep forever' }),
        /** how often the retention sweeper runs */
        retentionSweepMinutes: Type.Integer({ minimum: 1, description: 'whole minutes, at least 1' }),
        /** the consent text users accept (GET /v1/consent/current); a user on another version is not recorded */
        consent: Type.Object(
          {
            version: Type.String({ minLength: 1, maxLength: 64, pattern: '^[\\x21-\\x7E]+$', description: 'printable, no spaces' }),
            /** the text itself; empty: read from textFile */
            text: Type.String(),
            /** a UTF-8 file holding the text, used when `text` is empty (relative to the working directory) */
            textFile: Type.String(),
            /** when this version was published (ISO 8601) */
            publishedAt: Type.String({ minLength: 1, description: 'ISO 8601 date-time' }),
          },
          { additionalProperties: false },
        ),
        /** what happens to a call by the counterpart's number: the longest matching E.164 prefix wins */
        counterpartPolicy: Type.Object(
          {
            default: ConsentAction,
            rules: Type.Array(Type.Object({ prefix: Type.String({ pattern: '^\\+[0-9]{1,15}$', description: 'E.164 prefix, e.g. +1415 or +49' }), action: ConsentAction }, { additionalProperties: false })),
          },
          { additionalProperties: false },
        ),
        /** the prompt rtpengine plays to the counterpart for `announce` (WAV or anything ffmpeg reads); empty: dataDir/announce.wav, generated at start */
        announceFile: Type.String(),
        /** what a user's pause leaves in the file: silence (the timeline stays true) or skip (the span is cut) */
        pauseBehavior: Type.Union([Type.Literal('silence'), Type.Literal('skip')], { description: 'silence or skip' }),
      },
      { additionalProperties: false },
    ),
    storage: Type.Object(
      {
        kind: Type.Union([Type.Literal('fs'), Type.Literal('s3')], { description: 'fs or s3' }),
        /** fs objects; empty: dataDir/objects */
        fsDir: Type.String(),
        /** encrypted chunks waiting for upload; empty: dataDir/spool */
        spoolDir: Type.String(),
        spoolMinBackoffMs: Type.Integer({ minimum: 10 }),
        spoolMaxBackoffMs: Type.Integer({ minimum: 100 }),
        s3: Type.Object(
          {
            endpoint: Type.String(),
            region: Type.String({ minLength: 1 }),
            bucket: Type.String(),
            forcePathStyle: Type.Boolean(),
            accessKeyId: Type.String(),
            secretAccessKey: Type.String(),
            requestTimeoutMs: Type.Integer({ minimum: 100 }),
          },
          { additionalProperties: false },
        ),
      },
      { additionalProperties: false },
    ),
    payouts: Type.Object(
      {
        /** per-minute rates in micro-units (1 USD = 1,000,000), prorated per second */
        rateEnrolledMicrosPerMinute: Type.Integer({ minimum: 0 }),
        rateOtherMicrosPerMinute: Type.Integer({ minimum: 0 }),
        /** per user per UTC day */
        dailyCapMicros: Type.Integer({ minimum: 0 }),
        minBillableSeconds: Type.Integer({ minimum: 0 }),
        maxPaidMinutesPerCall: Type.Integer({ minimum: 1 }),
        /** talk seconds / billable seconds below this: earns nothing, flagged `silent` */
        minTalkRatio: Type.Number({ minimum: 0, maximum: 1 }),
        /** more calls than this to one counterpart in a UTC day: flagged `repeat-counterpart` */
        maxCallsPerCounterpartPerDay: Type.Integer({ minimum: 1 }),
        /** between two enrolled users: talk ratio below this is flagged `farming` */
        enrolledPairMinTalkRatio: Type.Number({ minimum: 0, maximum: 1 }),
        /** between two enrolled users: more calls than this in a UTC day is flagged `farming` */
        enrolledPairMaxCallsPerDay: Type.Integer({ minimum: 1 }),
        /** provider and our duration may differ by this much before the call is flagged */
        reconcileToleranceSeconds: Type.Integer({ minimum: 0 }),
        /** the smallest withdrawal a user may request (POST /v1/payouts) */
        minimumPayoutMicros: Type.Integer({ minimum: 1 }),
      },
      { additionalProperties: false },
    ),
    /** The owner-only HTTP API (/v1) on the http listener. */
    api: Type.Object(
      {
        /** lifetime of a recording grant (POST /v1/recordings/{id}/grants) */
        grantTtlSeconds: Type.Integer({ minimum: 1, maximum: 300, description: 'seconds, 1-300 (at most 5 minutes)' }),
        /** HTTP requests one grant may serve (a player makes several Range requests) */
        grantMaxRequests: Type.Integer({ minimum: 1, maximum: 1000 }),
        /** requests per minute per token (or per address without one) */
        rateLimitPerMinute: Type.Integer({ minimum: 1 }),
        /** grant issuance per minute per token */
        grantRateLimitPerMinute: Type.Integer({ minimum: 1 }),
        /** failed authentications (401) per minute per address before 429 */
        authFailuresPerMinute: Type.Integer({ minimum: 1 }),
      },
      { additionalProperties: false },
    ),
    /** The app backend's admin API: its own listener, off while port is 0 or keyHash empty. */
    admin: Type.Object(
      {
        host: Address,
        port: Type.Integer({ minimum: 0, maximum: 65535, description: 'a port; 0 = admin API off' }),
        /** SHA-256 (hex) of the admin key; `monologue admin hash-key` prints it */
        keyHash: Type.String({ pattern: '^([0-9a-fA-F]{64})?$', description: 'hex SHA-256 of the admin key (64 hex digits), or empty (admin API off)' }),
        /** requests per minute per source address on the admin listener */
        rateLimitPerMinute: Type.Integer({ minimum: 1 }),
      },
      { additionalProperties: false },
    ),
    /** Prometheus `/metrics` on its own listener, never the public one (docs/metrics.md). */
    metrics: Type.Object(
      {
        enabled: Type.Boolean({ description: 'true or false' }),
        /** keep it on a private interface: the text names call counts, end reasons and the process's resources */
        host: Address,
        port: Type.Integer({ minimum: 0, maximum: 65535, description: 'a port, 0-65535 (0 = any free one)' }),
      },
      { additionalProperties: false },
    ),
    webhooks: Type.Object(
      {
        maxBodyBytes: Type.Integer({ minimum: 256 }),
        /** signed timestamps older or newer than this are refused */
        timestampToleranceSeconds: Type.Integer({ minimum: 1 }),
        /** the public base URL the provider posts to (Twilio signs the full URL); empty: taken from the request */
        publicBaseUrl: Type.String(),
        twilio: Type.Object({ authToken: Type.String() }, { additionalProperties: false }),
        /** base64 Ed25519 public key from the Telnyx portal */
        telnyx: Type.Object({ publicKey: Type.String() }, { additionalProperties: false }),
        generic: Type.Object({ secret: Type.String() }, { additionalProperties: false }),
      },
      { additionalProperties: false },
    ),
    /** Signed outgoing events to the app's backend (src/events): Standard Webhooks, from a durable outbox. */
    events: Type.Object(
      {
        /** where events are POSTed; empty = events off (nothing is written to the outbox) */
        url: Type.String(),
        /** Standard Webhooks secret, `whsec_` + base64 (at least 24 bytes); required when url is set */
        secret: Type.String(),
        /** an event not delivered within this many hours of its creation is marked failed */
        maxRetryHours: Type.Number({ minimum: 0 }),
        /** a POST not answered within this is a failed attempt */
        timeoutMs: Type.Integer({ minimum: 100 }),
        /** retry delay: full jitter over min(maxBackoffMs, minBackoffMs * 2^(attempt-1)) */
        minBackoffMs: Type.Integer({ minimum: 10 }),
        maxBackoffMs: Type.Integer({ minimum: 10 }),
        /** how often the outbox is polled when idle */
        pollMs: Type.Integer({ minimum: 10 }),
      },
      { additionalProperties: false },
    ),
    secrets: Type.Object(
      {
        /** 32-byte key for phone-number hashing and encryption; empty: `dataDir/keys/phone.key`, created on first start */
        phoneKeyFile: Type.String(),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

export type Config = Static<typeof ConfigSchema>;
