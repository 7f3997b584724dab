// gtest helpers over the recorded transcripts (header-only, tests only).
#pragma once

#include <string>

#include <gtest/gtest.h>

#include "moodle/testing/fake_moodle.h"

namespace enrolsync::moodle::testing {

// The transcript's response_body; records a test failure when the transcript
// is missing (ENROLSYNC_SHARED_MOODLE must point at ../shared/moodle).
inline std::string ResponseOf(const std::string& name) {
  auto t = LoadTranscript(name);
  if (!t) {
    ADD_FAILURE() << "transcript " << name << ".json not found under " << ENROLSYNC_SHARED_MOODLE
                  << "/transcripts (set -DENROLSYNC_SHARED_MOODLE=...)";
    return "";
  }
  return (*t)["response_body"].get<std::string>();
}

inline nlohmann::json Transcript(const std::string& name) {
  auto t = LoadTranscript(name);
  if (!t) {
    ADD_FAILURE() << "transcript " << name << ".json not found under " << ENROLSYNC_SHARED_MOODLE << "/transcripts";
    return nlohmann::json::object();
  }
  return *t;
}

}  // namespace enrolsync::moodle::testing
