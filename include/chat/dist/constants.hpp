// Constants of the Erlang distribution protocol, from the erts User's Guide chapter
// "Distribution Protocol" (erts/doc/src/erl_dist_protocol.xml) and erts/emulator/beam/dist.h.
#pragma once

#include <cstdint>

namespace chat::dist {

// Distribution flags exchanged in the handshake (DFLAG_*), with the OTP release that
// introduced each one where it matters for interop.
namespace flag {
inline constexpr uint64_t kPublished = 0x1;
inline constexpr uint64_t kAtomCache = 0x2;
inline constexpr uint64_t kExtendedReferences = 0x4;
inline constexpr uint64_t kDistMonitor = 0x8;
inline constexpr uint64_t kFunTags = 0x10;
inline constexpr uint64_t kDistMonitorName = 0x20;
inline constexpr uint64_t kHiddenAtomCache = 0x40;
inline constexpr uint64_t kNewFunTags = 0x80;
inline constexpr uint64_t kExtendedPidsPorts = 0x100;
inline constexpr uint64_t kExportPtrTag = 0x200;
inline constexpr uint64_t kBitBinaries = 0x400;
inline constexpr uint64_t kNewFloats = 0x800;
inline constexpr uint64_t kUnicodeIo = 0x1000;
inline constexpr uint64_t kDistHdrAtomCache = 0x2000;
inline constexpr uint64_t kSmallAtomTags = 0x4000;
inline constexpr uint64_t kUtf8Atoms = 0x10000;
inline constexpr uint64_t kMapTag = 0x20000;
inline constexpr uint64_t kBigCreation = 0x40000;
inline constexpr uint64_t kSendSender = 0x80000;
inline constexpr uint64_t kBigSeqtraceLabels = 0x100000;
inline constexpr uint64_t kExitPayload = 0x400000;
inline constexpr uint64_t kFragments = 0x800000;
inline constexpr uint64_t kHandshake23 = 0x1000000;    // OTP 23: 'N' handshake, 32-bit creation
inline constexpr uint64_t kUnlinkId = 0x2000000;       // OTP 23; mandatory from OTP 26
inline constexpr uint64_t kMandatory25Digest = 0x4000000;  // OTP 25
inline constexpr uint64_t kSpawn = 1ULL << 32;         // OTP 23
inline constexpr uint64_t kNameMe = 1ULL << 33;
inline constexpr uint64_t kV4Nc = 1ULL << 34;          // OTP 24; mandatory from OTP 26
inline constexpr uint64_t kAlias = 1ULL << 35;         // OTP 24

// What OTP 25 requires of every peer (DFLAG_DIST_MANDATORY_25); OTP 26 adds UNLINK_ID and V4_NC.
inline constexpr uint64_t kMandatory25 = kExtendedReferences | kFunTags | kExtendedPidsPorts |
                                         kUtf8Atoms | kNewFunTags | kBigCreation | kNewFloats |
                                         kMapTag | kExportPtrTag | kBitBinaries | kHandshake23;
inline constexpr uint64_t kMandatory26 = kMandatory25 | kUnlinkId | kV4Nc;

// Exactly what this node implements. The atom cache as a BEAM peer fills it (DIST_HDR_ATOM_CACHE:
// frames carry a distribution header; ours name no atoms). No fragments. No EXIT_PAYLOAD:
// without it both sides carry exit reasons inside the control tuple (EXIT, EXIT2,
// MONITOR_P_EXIT); the PAYLOAD_* forms are still decoded.
inline constexpr uint64_t kOurs = kMandatory26 | kPublished | kDistMonitor | kDistMonitorName |
                                  kSmallAtomTags | kSendSender | kUnicodeIo | kDistHdrAtomCache |
                                  kMandatory25Digest | kBigSeqtraceLabels | kSpawn | kAlias;
// What we insist on from a peer: the terms we decode and the 'N' handshake.
inline constexpr uint64_t kRequired = kMandatory25;
}  // namespace flag

// Control message operations (first element of the control tuple).
enum class Op : int64_t {
  kLink = 1,
  kSend = 2,
  kExit = 3,
  kUnlink = 4,
  kNodeLink = 5,
  kRegSend = 6,
  kGroupLeader = 7,
  kExit2 = 8,
  kSendTt = 12,
  kExitTt = 13,
  kRegSendTt = 16,
  kExit2Tt = 18,
  kMonitorP = 19,
  kDemonitorP = 20,
  kMonitorPExit = 21,
  kSendSender = 22,
  kSendSenderTt = 23,
  kPayloadExit = 24,
  kPayloadExitTt = 25,
  kPayloadExit2 = 26,
  kPayloadExit2Tt = 27,
  kPayloadMonitorPExit = 28,
  kSpawnRequest = 29,
  kSpawnRequestTt = 30,
  kSpawnReply = 31,
  kSpawnReplyTt = 32,
  kAliasSend = 33,
  kAliasSendTt = 34,
  kUnlinkId = 35,
  kUnlinkIdAck = 36,
};

// "After the handshake, the distribution switches to 4 byte packet headers"; a message
// without a distribution header starts with this pass-through byte.
inline constexpr uint8_t kPassThrough = 112;
inline constexpr uint8_t kVersionMagic = 131;

// Highest/lowest handshake versions registered with EPMD (OTP 23+ speak version 6).
inline constexpr uint16_t kHighestVersion = 6;
inline constexpr uint16_t kLowestVersion = 5;

}  // namespace chat::dist
