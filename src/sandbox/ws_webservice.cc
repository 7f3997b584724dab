// core_webservice: site info.
#include "sandbox/ws_common.h"

#include "sandbox/ws_error.h"
#include "util/strings.h"

namespace enrolsync::sandbox {

namespace {

Json GetSiteInfo(SiteStore& s, const Json&, const CallEnv& env) {
  Json o = Json::object();
  auto admin = UserRow(s, kAdminUserId);
  o["sitename"] = "enrolsync sandbox";
  o["username"] = admin ? (*admin)[1].s : "admin";
  o["firstname"] = admin ? (*admin)[2].s : "Admin";
  o["lastname"] = admin ? (*admin)[3].s : "User";
  o["fullname"] = o["firstname"].get<std::string>() + " " + o["lastname"].get<std::string>();
  o["lang"] = "en";
  o["userid"] = kAdminUserId;
  o["siteurl"] = env.siteurl;
  o["userpictureurl"] = ImageUrl(env, false);
  Json fns = Json::array();
  for (const FunctionDef& f : ServiceFunctions()) fns.push_back({{"name", f.name}, {"version", f.version}});
  o["functions"] = fns;
  o["downloadfiles"] = 0;
  o["uploadfiles"] = 0;
  o["release"] = "5.1+ (Build: 20251017)";
  o["version"] = kCoreVersion;
  o["mobilecssurl"] = "";
  Json adv = Json::array();
  for (auto [n, v] : std::vector<std::pair<const char*, int>>{
           {"usecomments", 1}, {"usetags", 1}, {"enablenotes", 1}, {"messaging", 1}, {"enableblogs", 1},
           {"enablecompletion", 1}, {"enablebadges", 1}, {"messagingallusers", 0}, {"enablecustomreports", 1},
           {"enableglobalsearch", 0}, {"mnet_dispatcher_mode", 0}, {"enablecompetencies", 1}}) {
    adv.push_back({{"name", n}, {"value", v}});
  }
  o["advancedfeatures"] = adv;
  o["usercanmanageownfiles"] = true;
  o["userquota"] = 0;
  o["usermaxuploadfilesize"] = -1;
  o["userhomepage"] = 1;
  o["userprivateaccesskey"] = "0123456789abcdef0123456789abcdef";
  o["siteid"] = kSiteCourseId;
  o["sitecalendartype"] = "gregorian";
  o["usercalendartype"] = "gregorian";
  o["userissiteadmin"] = true;
  o["theme"] = "boost";
  o["limitconcurrentlogins"] = 0;
  o["policyagreed"] = 0;
  return o;
}

}  // namespace

void RegisterWebservice(std::vector<FunctionDef>& f) {
  using P = PType;
  f.push_back({"core_webservice_get_site_info", kCoreVersion,
               Single({{"serviceshortnames", Multi(Req(P::kAlphanumext), Need::kDefault, Json::array())}}),
               GetSiteInfo});
}

}  // namespace enrolsync::sandbox
