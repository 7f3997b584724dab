<?php
// Test-harness setup of a freshly installed Moodle, run from the Moodle root:
//   php setup_site.php <token-file>
// Turns web services and REST on, creates the external service "enrolsync"
// with every function enrolsync may call (and those later issues will), and
// issues a permanent token for the admin user. The token is written to
// <token-file> (mode 0600), never printed.
define('CLI_SCRIPT', true);
require(getcwd() . '/config.php');
require_once($CFG->dirroot . '/webservice/lib.php');

if ($argc < 2) {
    fwrite(STDERR, "usage: setup_site.php <token-file>\n");
    exit(2);
}
$tokenfile = $argv[1];

set_config('enablewebservices', 1);
set_config('webserviceprotocols', 'rest');
// The iSAMS guide's course defaults, as admin/cli/cfg.php would set them.
set_config('visible', 0, 'moodlecourse');
set_config('format', 'topics', 'moodlecourse');
set_config('coursedisplay', 1, 'moodlecourse');
set_config('showreports', 1, 'moodlecourse');
set_config('enablecompletion', 1, 'moodlecourse');
set_config('enablecompletion', 1);
// enrol_database sends no welcome message; the manual plugin must not either.
set_config('sendcoursewelcomemessage', 0, 'enrol_manual');
// Course meta links, which schools use for department courses (off on a
// fresh site, where enrol_meta_sync does nothing).
$enabled = array_filter(explode(',', (string)get_config('core', 'enrol_plugins_enabled')));
if (!in_array('meta', $enabled)) {
    $enabled[] = 'meta';
    set_config('enrol_plugins_enabled', implode(',', $enabled));
}

$functions = [
    'core_webservice_get_site_info',
    'core_course_get_categories', 'core_course_create_categories',
    'core_course_get_courses_by_field', 'core_course_create_courses', 'core_course_update_courses',
    'core_user_get_users_by_field', 'core_user_get_users', 'core_user_create_users',
    'core_user_update_users', 'core_user_delete_users',
    'core_enrol_get_enrolled_users', 'core_enrol_get_course_enrolment_methods',
    'core_enrol_get_enrolled_users_with_capability',
    // Not used by enrolsync: candidates measured by bench/realmoodle_reads.
    'core_course_get_courses', 'core_course_search_courses', 'core_user_get_course_user_profiles',
    'enrol_manual_enrol_users', 'enrol_manual_unenrol_users',
    'core_role_assign_roles', 'core_role_unassign_roles',
    'enrol_meta_add_instances', 'enrol_meta_delete_instances',
    'core_group_create_groups', 'core_group_add_group_members', 'core_group_delete_group_members',
    'core_cohort_create_cohorts', 'core_cohort_add_cohort_members', 'core_cohort_get_cohorts',
];

$manager = new webservice();
$service = $DB->get_record('external_services', ['shortname' => 'enrolsync']);
if (!$service) {
    $record = (object) [
        'name' => 'enrolsync', 'shortname' => 'enrolsync', 'enabled' => 1,
        'restrictedusers' => 0, 'downloadfiles' => 0, 'uploadfiles' => 0,
    ];
    $serviceid = $manager->add_external_service($record);
    $service = $DB->get_record('external_services', ['id' => $serviceid], '*', MUST_EXIST);
}
foreach ($functions as $f) {
    if (!$DB->record_exists('external_functions', ['name' => $f])) {
        continue;  // not in this Moodle version: enrolsync's check will say so
    }
    if (!$manager->service_function_exists($f, $service->id)) {
        $manager->add_external_function_to_service($f, $service->id);
    }
}
$admin = get_admin();
$token = \core_external\util::generate_token(EXTERNAL_TOKEN_PERMANENT, $service, $admin->id,
    context_system::instance());
$old = umask(0077);
file_put_contents($tokenfile, $token);
umask($old);
echo "setup_site: service enrolsync with " . count($functions) . " functions, token for admin\n";
