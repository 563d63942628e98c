import { CreateScmTokenEntry1764000000000 } from "./1764000000000-CreateScmTokenEntry";
import { CreateScmSecret1764100000000 } from "./1764100000000-CreateScmSecret";
import { BinaryIdentifierCollation1764200000000 } from "./1764200000000-BinaryIdentifierCollation";

/** Every migration of the library, oldest first. Add them to your own DataSource's `migrations`. */
export const scmTokenServiceMigrations = [CreateScmTokenEntry1764000000000, CreateScmSecret1764100000000, BinaryIdentifierCollation1764200000000];
