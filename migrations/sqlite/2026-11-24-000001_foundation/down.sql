DROP TABLE change_feed;
DROP TABLE tariffs;
DROP TABLE connectors;
DROP TABLE evses;
DROP TABLE locations;
DROP TABLE partner_parties;
DROP TABLE partners;
