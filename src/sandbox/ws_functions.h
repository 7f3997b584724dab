// The web-service functions the sandbox implements: their parameter
// descriptions and handlers. A handler runs inside one SQLite transaction;
// it throws WsException for a Moodle error, and the whole call is rolled back.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "sandbox/params.h"
#include "sandbox/site_store.h"

namespace enrolsync::sandbox {

struct CallEnv {
  std::string siteurl;  // "http://127.0.0.1:PORT"
  // Work a cost model charges beyond the request and the answer (see
  // cost_model.h, FunctionCost::per_unit); handlers add to it. May be null.
  long long* work_units = nullptr;
};

struct FunctionDef {
  std::string name;
  std::string version;  // as listed by core_webservice_get_site_info
  Desc params;          // the external_function_parameters
  // Returns the response; Json(nullptr) is answered as the literal "null".
  std::function<Json(SiteStore&, const Json& params, const CallEnv&)> handler;
};

// The functions of the sandbox's external service, in site-info order.
const std::vector<FunctionDef>& ServiceFunctions();
const FunctionDef* FindServiceFunction(const std::string& name);
// A real Moodle function that is not in the service (-> accessexception).
bool IsOtherMoodleFunction(const std::string& name);

}  // namespace enrolsync::sandbox
