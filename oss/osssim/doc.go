// Package osssim is an in-process stand-in for the Alibaba Cloud OSS Batch
// Operations API: the ListJobs and DescribeJob calls of a regional endpoint,
// served by an http.Handler. Tests, the demo and load runs point the real
// client at it instead of at OSS.
//
// The simulator is deliberately independent of the project's oss client: it
// shares no code with it, so a client bug cannot hide behind a simulator that
// makes the same mistake. Signatures are recomputed with the signer of the
// official Go SDK (alibabacloud-oss-go-sdk-v2), which is what real OSS agrees
// with.
//
// # What is faithful
//
//   - Authentication comes first. V4 (OSS4-HMAC-SHA256, with AdditionalHeaders)
//     and V1 (OSS AKID:signature) header signatures are verified by recomputing
//     them; unknown keys, wrong secrets, a wrong scope region, a missing or
//     skewed date, and STS security tokens are refused with OSS's codes.
//     A security token sent with a long-term key is refused as OSS does, with
//     InvalidAccessKeyId. No secret or signature ever appears in a response or
//     a log line.
//   - Error bodies have OSS's shape (Code, Message, RequestId, HostId, EC and,
//     where there is an EC, RecommendDoc), RequestTimeTooSkewed adds
//     MaxAllowedSkewMilliseconds, RequestTime and ServerTime, and every
//     response carries x-oss-request-id and a Date read from Config.NowFunc, so
//     the SDK's clock-skew correction works against it.
//   - ListJobs validates max-keys (1..1000, default 100), batchJobStatuses
//     (the 13 documented statuses, '|'-separated) and continuation-token
//     (1..1024 characters, opaque). Pages are in JobId order and the pager is
//     keyset-based: a token means "after this JobId", so jobs that arrive or
//     expire between pages behave as they do on a real keyset pager. NextToken
//     is present only when more pages follow. Every token carries '+', '/',
//     '=', ':', '?' and '#', so a client that does not URL-encode it breaks.
//     A token is bound to the status filter it was issued for.
//   - The XML varies the way OSS's does: ElapsedTimeInActiveSeconds sits under
//     ProgressSummary/Timers for some jobs and directly under ProgressSummary
//     for others; a running job's TerminationDate is 0 for some and absent for
//     others; FailureReasons is present on every DescribeJob answer, either
//     empty or holding one empty JobFailure when the job has not failed.
//     With Config.UnknownElements (or Lively) some descriptors carry elements
//     a client does not know (Tags, StorageClassHint). Each choice is fixed per
//     JobId, so a test can rely on it.
//   - JobIds are opaque: a job placed with Put keeps every byte of its id
//     (spaces, '+', '%', '/', non-ASCII), in listings, continuation tokens
//     and DescribeJob, which finds a job by its exact id only. Times go out
//     as the Unix seconds of the job's time.Time, so tests serve odd values
//     with Put: a CreationTime of time.Unix(1749983400123, 0) is sent as the
//     millisecond value 1749983400123, time.Unix(-5, 0) as -5, and a
//     negative counter as it is.
//   - The world evolves along OSS's lifecycle (see the Step method): terminal
//     jobs never change, counters only grow and never pass the total,
//     Suspended jobs want confirmation, pollers may see states skipped, new
//     jobs arrive and terminal jobs expire from the listing.
//
// # What is simplified
//
//   - DescribeJob returns Operation as a plain string, as ListJobs does; real
//     OSS returns a structured element there (for example
//     <Operation><PutObjectTagging>…</PutObjectTagging></Operation>).
//     Report and Manifest are derived from the JobId, not stored.
//   - Only header signatures are accepted: signed URLs (query-string
//     authentication) and the V2 scheme are refused with AccessDenied.
//   - V1 signatures are recomputed with the sub-resource list V1SubResources;
//     a client must sign with the same list.
//   - There is no account, bucket, RAM policy or rate limit: any configured
//     credential may call both operations, and throttling exists only as an
//     injected fault.
//   - Injected faults (Config.Faults, FailNext) apply after authentication
//     succeeds, so a fault never hides an authentication bug. Truncated and
//     malformed bodies replace only successful answers.
//   - Error codes for parameter errors and throttling are OSS's; the EC values
//     for authentication errors are plausible but not all verified against
//     OSS. The EC of an unknown job, 0017-00001002, is OSS's.
//   - Jobs with a status outside the documented set (placed with Put) are
//     listed verbatim but never evolve.
package osssim
