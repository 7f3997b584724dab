// What a web-service call costs a real Moodle, so that the sandbox can charge
// it (enrolsync-sandbox --cost-model moodle-5.1) and benchmarks and tests
// against the sandbox predict real wall time and concurrency.
//
// A call costs
//   bootstrap + per_call + per_item × items + per_record × records
//             + per_unit × units
// where `items` is the length of the request's main list (courses to create,
// enrolments, user ids asked for), `records` what the answer returns (users
// built, participants listed, courses described) and `units` work the
// answer does not show (the courses of each user returned, which Moodle
// walks to build the user). A call that Moodle answers with an exception is
// charged the bootstrap only.
//
// The figures of "moodle-5.1" were measured against the realmoodle harness
// (Moodle 5.1+, PHP's built-in server with 4 workers, PostgreSQL 15, on a
// 2-core machine): bench/README.md "The cost-modelled sandbox" lists where
// each comes from and how well the model predicts whole runs.
//
// Pure functions; thread-safe.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "sandbox/params.h"

namespace enrolsync::sandbox {

struct FunctionCost {
  double per_call = 0;    // seconds on top of the bootstrap
  double per_item = 0;    // seconds per element of the request's main list
  double per_record = 0;  // seconds per record in the answer
  double per_unit = 0;    // seconds per unit of hidden work
};

struct CostModel {
  std::string name;
  double bootstrap = 0;  // seconds every call costs before any work
  // Calls Moodle works on at once; more wait for a free worker (FIFO).
  // 0: no limit. Two for a 2-core machine: a third concurrent call makes
  // every call slower and the total no faster (shared/moodle/README.md).
  int workers = 0;
  // Functions not listed cost the bootstrap only.
  std::map<std::string, FunctionCost, std::less<>> functions;
  // Participant reads (core_enrol_get_enrolled_users and
  // ..._with_capability): per_record is for userfields "id,roles"; these
  // factors apply to "id" alone and to any other field list (Moodle then
  // builds user details).
  double participants_id_only_factor = 1;
  double participants_details_factor = 1;
};

// The named model ("moodle-5.1"), or nullopt for an unknown name.
std::optional<CostModel> FindCostModel(std::string_view name);

// How big a call was, as the model counts it.
struct CallSize {
  long long items = 0;
  long long records = 0;
};
// `params` is the validated request, `result` the answer (an exception
// object for a failed call).
CallSize MeasureCall(std::string_view function, const Json& params, const Json& result);

// Seconds the call would have cost Moodle; `units` as counted by the
// sandbox's handler (CallEnv::work_units).
double CallSeconds(const CostModel& model, std::string_view function, const Json& params, const Json& result,
                   long long units = 0);

}  // namespace enrolsync::sandbox
