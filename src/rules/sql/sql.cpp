// Placeholder translation unit; replaced by the SQL engine's sources.
namespace fleetcore::rules::sql {}
