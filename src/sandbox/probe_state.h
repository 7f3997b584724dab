// The site state in the table format of shared/moodle/probes/ (state_before,
// state_after): user_enrolments joined to enrol, role_assignments in course
// contexts, enrol_instances, users, course, groups, notifications... Used to
// seed a sandbox with a recorded Moodle state (the recorded ids kept) and to
// read the state back for comparison. Internal to the sandbox.
#pragma once

#include "sandbox/params.h"
#include "sandbox/site_store.h"

namespace enrolsync::sandbox {

// Inserts the rows of `state` (an object of table name -> array of rows, in
// the probe format) with their recorded ids. Tables: users, course,
// course_context, enrol_instances, user_enrolments, role_assignments, groups,
// groups_members, notifications_to_users, user_preferences; unknown tables
// are ignored. A course with no instance of manual, guest or self gets
// Moodle's default one; a course without a course_context row gets a new
// context. Runs inside the caller's transaction; throws DbError.
void SeedProbeState(SiteStore& s, const Json& state);

// Every row of those tables (plus course_format_options, course_sections and
// forum_news), in the probe format, ordered by id. The site's own objects
// (front page, guest, admin) are left out.
Json DumpProbeState(SiteStore& s);

}  // namespace enrolsync::sandbox
